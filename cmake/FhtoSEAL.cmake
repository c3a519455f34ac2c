# Provides Microsoft SEAL 4.1.2 when no SEAL install was found.
#
# SEAL is not packaged by Debian; the only registry copy of its source is vendored in the
# PyPI sdist of Pyfhel 3.5.0. This script fetches that sdist with pip (or takes
# FHTO_SEAL_SDIST, a path to an already downloaded copy), verifies its sha256, extracts only
# Pyfhel/backend/SEAL, and builds SEAL static, position-independent and Release, with its
# optional dependencies (GSL, zlib, zstd) switched off, so nothing else is downloaded.
# The install lands in a cache outside the build tree, keyed by compiler, so rebuilds of the
# extension and CI reruns on the same machine reuse it:
#   $FHTO_SEAL_CACHE, else $XDG_CACHE_HOME/fhto, else ~/.cache/fhto.

set(FHTO_SEAL_VERSION 4.1.2)
set(FHTO_PYFHEL_VERSION 3.5.0)
set(FHTO_PYFHEL_SHA256 0375b83b5a83026924f59db25c4efa9f27e1e8a66d004658f4d24195986a04b6)

function(fhto_provide_seal)
  if(DEFINED ENV{FHTO_SEAL_CACHE})
    set(cache "$ENV{FHTO_SEAL_CACHE}")
  elseif(DEFINED ENV{XDG_CACHE_HOME})
    set(cache "$ENV{XDG_CACHE_HOME}/fhto")
  else()
    set(cache "$ENV{HOME}/.cache/fhto")
  endif()
  string(MD5 key "${CMAKE_CXX_COMPILER_ID}-${CMAKE_CXX_COMPILER_VERSION}-${CMAKE_SYSTEM_PROCESSOR}-static-pic-release-nodeps")
  string(SUBSTRING "${key}" 0 12 key)
  set(prefix "${cache}/seal-${FHTO_SEAL_VERSION}-${key}")
  set(FHTO_SEAL_PREFIX "${prefix}" PARENT_SCOPE)

  file(MAKE_DIRECTORY "${cache}")
  # Concurrent builds on one machine wait for each other instead of racing.
  file(LOCK "${cache}/seal.lock" GUARD FUNCTION TIMEOUT 1800)
  if(EXISTS "${prefix}/.complete")
    message(STATUS "fhto: reusing cached SEAL ${FHTO_SEAL_VERSION} in ${prefix}")
    return()
  endif()

  set(sdist "${cache}/pyfhel-${FHTO_PYFHEL_VERSION}.tar.gz")
  if(DEFINED ENV{FHTO_SEAL_SDIST})
    set(sdist "$ENV{FHTO_SEAL_SDIST}")
  endif()
  if(EXISTS "${sdist}")
    file(SHA256 "${sdist}" have)
    if(NOT have STREQUAL FHTO_PYFHEL_SHA256)
      message(STATUS "fhto: ${sdist} has the wrong sha256; fetching it again")
      file(REMOVE "${sdist}")
    endif()
  endif()
  if(NOT EXISTS "${sdist}")
    message(STATUS "fhto: fetching SEAL ${FHTO_SEAL_VERSION} source (pyfhel==${FHTO_PYFHEL_VERSION} sdist from PyPI)")
    set(dl "${cache}/download")
    file(REMOVE_RECURSE "${dl}")
    set(args download --no-deps --no-binary pyfhel --disable-pip-version-check -q -d "${dl}" "pyfhel==${FHTO_PYFHEL_VERSION}")
    execute_process(COMMAND "${Python_EXECUTABLE}" -m pip ${args} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      # Inside an isolated build environment pip may not be importable; use the one on PATH.
      find_program(FHTO_PIP NAMES pip3 pip)
      if(FHTO_PIP)
        execute_process(COMMAND "${FHTO_PIP}" ${args} RESULT_VARIABLE rc)
      endif()
    endif()
    if(NOT rc EQUAL 0 OR NOT EXISTS "${dl}/pyfhel-${FHTO_PYFHEL_VERSION}.tar.gz")
      message(FATAL_ERROR "fhto: could not download the pyfhel==${FHTO_PYFHEL_VERSION} sdist that carries SEAL's source. "
                          "Download it yourself and set FHTO_SEAL_SDIST to its path, or install SEAL 4.1 and set SEAL_DIR.")
    endif()
    file(RENAME "${dl}/pyfhel-${FHTO_PYFHEL_VERSION}.tar.gz" "${sdist}")
    file(REMOVE_RECURSE "${dl}")
    file(SHA256 "${sdist}" have)
    if(NOT have STREQUAL FHTO_PYFHEL_SHA256)
      file(REMOVE "${sdist}")
      message(FATAL_ERROR "fhto: pyfhel sdist sha256 mismatch: expected ${FHTO_PYFHEL_SHA256}, got ${have}")
    endif()
  endif()

  set(work "${cache}/seal-work-${key}")
  file(REMOVE_RECURSE "${work}")
  file(MAKE_DIRECTORY "${work}")
  message(STATUS "fhto: extracting Pyfhel/backend/SEAL")
  file(ARCHIVE_EXTRACT INPUT "${sdist}" DESTINATION "${work}/src"
       PATTERNS "pyfhel-${FHTO_PYFHEL_VERSION}/Pyfhel/backend/SEAL/*")
  set(src "${work}/src/pyfhel-${FHTO_PYFHEL_VERSION}/Pyfhel/backend/SEAL")
  # SEAL's tree arrives with a dangling .git file (a submodule pointer); drop it.
  file(REMOVE "${src}/.git")

  include(ProcessorCount)
  ProcessorCount(ncpu)
  if(ncpu EQUAL 0)
    set(ncpu 2)
  endif()
  set(generator_args -G "${CMAKE_GENERATOR}")
  if(CMAKE_MAKE_PROGRAM)
    list(APPEND generator_args "-DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}")
  endif()
  message(STATUS "fhto: building SEAL ${FHTO_SEAL_VERSION} (static, PIC, Release; about a minute on 2 cores)")
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -S "${src}" -B "${work}/build" ${generator_args}
            "-DCMAKE_C_COMPILER=${CMAKE_C_COMPILER}" "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}"
            -DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DBUILD_SHARED_LIBS=OFF
            -DSEAL_BUILD_DEPS=OFF -DSEAL_USE_MSGSL=OFF -DSEAL_USE_ZLIB=OFF -DSEAL_USE_ZSTD=OFF
            -DSEAL_USE_INTEL_HEXL=OFF -DSEAL_BUILD_EXAMPLES=OFF -DSEAL_BUILD_TESTS=OFF
            -DSEAL_BUILD_BENCH=OFF "-DCMAKE_INSTALL_PREFIX=${prefix}"
    OUTPUT_FILE "${work}/configure.log" ERROR_FILE "${work}/configure.log"
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "fhto: configuring SEAL failed; see ${work}/configure.log")
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" --build "${work}/build" --parallel ${ncpu}
                  OUTPUT_FILE "${work}/build.log" ERROR_FILE "${work}/build.log" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "fhto: building SEAL failed; see ${work}/build.log")
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" --install "${work}/build"
                  OUTPUT_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "fhto: installing SEAL into ${prefix} failed")
  endif()
  file(WRITE "${prefix}/.complete" "SEAL ${FHTO_SEAL_VERSION} from pyfhel==${FHTO_PYFHEL_VERSION} sha256 ${FHTO_PYFHEL_SHA256}\n")
  file(REMOVE_RECURSE "${work}")
endfunction()
