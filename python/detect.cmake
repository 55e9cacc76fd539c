# HIPPO_BUILD_PYTHON (the `hippo` Python package, python/): on by default when pybind11 and
# the Python headers are found. The static libhippo then goes into a shared Python extension,
# so python/CMakeLists.txt compiles the library (only it) position-independent
# (docs/python.md: no measurable cost on decoding or FlashConv).
# The interpreter: Debian's /usr/bin/python3 (with numpy and torch) unless Python3_EXECUTABLE
# is given, so that a pyenv or venv python3 earlier on PATH is not picked up by accident.
if(NOT DEFINED Python3_EXECUTABLE AND EXISTS /usr/bin/python3)
  set(Python3_EXECUTABLE /usr/bin/python3 CACHE FILEPATH "Python for the hippo package")
endif()
find_package(Python3 COMPONENTS Interpreter Development.Module QUIET)
find_package(pybind11 CONFIG QUIET)
if(Python3_FOUND AND pybind11_FOUND)
  set(HIPPO_PYTHON_DEFAULT ON)
else()
  set(HIPPO_PYTHON_DEFAULT OFF)
endif()
option(HIPPO_BUILD_PYTHON "Build the Python package (needs pybind11-dev and python3-dev)"
       ${HIPPO_PYTHON_DEFAULT})
if(HIPPO_BUILD_PYTHON)
  if(NOT Python3_FOUND OR NOT pybind11_FOUND)
    message(FATAL_ERROR "HIPPO_BUILD_PYTHON=ON needs pybind11 (Debian: pybind11-dev) and the "
                        "Python headers (python3-dev)")
  endif()
endif()
