# `cmake --install build --prefix P`: libhippo, include/hippo/*, the CMake package
# (P/lib/cmake/hippo: hippoConfig.cmake, target hippo::hippo) and P/lib/pkgconfig/hippo.pc.
# A static libhippo.a carries its dependencies along: the package finds OpenMP and oneDNN
# (and FFTW) for the user, hippo.pc lists them under Requires.private/Libs.private.
set(HIPPO_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/hippo)
if(BUILD_SHARED_LIBS)
  set(HIPPO_STATIC OFF)
else()
  set(HIPPO_STATIC ON)
endif()

install(TARGETS hippo EXPORT hippoTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/hippo DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT hippoTargets NAMESPACE hippo:: DESTINATION ${HIPPO_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/hippoConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/hippoConfig.cmake
                              INSTALL_DESTINATION ${HIPPO_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/hippoConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/hippoConfig.cmake ${CMAKE_BINARY_DIR}/hippoConfigVersion.cmake
        DESTINATION ${HIPPO_CMAKE_DIR})

# pkg-config: `pkg-config --cflags --libs hippo` for the shared library; add --static for
# libhippo.a (oneDNN, OpenMP's libgomp and the C++ runtime, which a C program does not bring).
set(HIPPO_PC_REQUIRES_PRIVATE "")
if(HIPPO_WITH_FFTW)
  set(HIPPO_PC_REQUIRES_PRIVATE "fftw3f")
endif()
set(HIPPO_PC_LIBS_PRIVATE "-ldnnl -fopenmp -lstdc++ -lm -lpthread")
if(HIPPO_WITH_MPI)
  set(HIPPO_PC_REQUIRES_PRIVATE "${HIPPO_PC_REQUIRES_PRIVATE} mpi-c")
endif()
foreach(cfg RELEASE RELWITHDEBINFO NOCONFIG DEBUG)
  get_target_property(dnnl_lib DNNL::dnnl IMPORTED_LOCATION_${cfg})
  if(dnnl_lib)
    break()
  endif()
endforeach()
if(dnnl_lib)
  get_filename_component(dnnl_dir "${dnnl_lib}" DIRECTORY)
  if(NOT dnnl_dir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
    set(HIPPO_PC_LIBS_PRIVATE "-L${dnnl_dir} ${HIPPO_PC_LIBS_PRIVATE}")
  endif()
endif()
# prefix relative to the .pc file, so that `cmake --install --prefix P` anywhere gives a right one.
file(RELATIVE_PATH HIPPO_PC_UP "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
string(REGEX REPLACE "/$" "" HIPPO_PC_UP "${HIPPO_PC_UP}")
set(HIPPO_PC_PREFIX "\${pcfiledir}/${HIPPO_PC_UP}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/hippo.pc.in ${CMAKE_BINARY_DIR}/hippo.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/hippo.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
