# Build helpers shared by every component (nng style):
#   ep_module(NAME DIR DEPS...)  static library from DIR/*.c (minus *_test.c)
#                                plus one unit-test executable per DIR/*_test.c
#   ep_fuzz(NAME SOURCE DEPS...) libFuzzer target, only when EP_FUZZ is ON

macro(ep_setup_flags)
  add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes
                      -Wmissing-prototypes -Wno-unused-parameter
                      -fno-strict-aliasing)
  if(EP_WERROR)
    add_compile_options(-Werror)
  endif()
  add_compile_definitions(_GNU_SOURCE EP_VERSION="${PROJECT_VERSION}")
  if(EP_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                        -fno-sanitize-recover=undefined)
    add_link_options(-fsanitize=address,undefined)
  endif()
  if(EP_TSAN)
    add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
    add_link_options(-fsanitize=thread)
  endif()
  if(EP_FUZZ)
    add_compile_options(-fsanitize=fuzzer-no-link)
  endif()
  include_directories(${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
endmacro()

macro(ep_add_subdirectory_if_exists dir)
  if(EXISTS ${PROJECT_SOURCE_DIR}/${dir}/CMakeLists.txt)
    add_subdirectory(${dir})
  endif()
endmacro()

# ep_module(name deps...) - call from the module's own CMakeLists.txt.
function(ep_module name)
  file(GLOB _all CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c
                                   ${CMAKE_CURRENT_SOURCE_DIR}/*/*.c)
  set(_srcs "")
  set(_tests "")
  foreach(f ${_all})
    if(f MATCHES "_test\\.c$")
      list(APPEND _tests ${f})
    else()
      list(APPEND _srcs ${f})
    endif()
  endforeach()
  add_library(${name} STATIC ${_srcs})
  target_link_libraries(${name} PUBLIC ${ARGN})
  foreach(t ${_tests})
    get_filename_component(_tn ${t} NAME_WE)
    set(_exe ${name}_${_tn})
    add_executable(${_exe} ${t})
    target_link_libraries(${_exe} PRIVATE ${name} PkgConfig::CMOCKA)
    add_test(NAME ${name}/${_tn} COMMAND ${_exe})
    set_tests_properties(${name}/${_tn} PROPERTIES TIMEOUT 180 LABELS unit)
  endforeach()
endfunction()

# ep_fuzz(name source deps...) - a libFuzzer harness, run for a bounded time
# by ctest over its committed seed corpus (tests/fuzz/corpora/<name>).
function(ep_fuzz name src)
  if(NOT EP_FUZZ)
    return()
  endif()
  add_executable(fuzz_${name} ${src})
  target_link_libraries(fuzz_${name} PRIVATE ${ARGN})
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  set(_corpus ${PROJECT_SOURCE_DIR}/tests/fuzz/corpora/${name})
  set(_work ${CMAKE_CURRENT_BINARY_DIR}/corpus_${name})
  if(NOT DEFINED ENV{EP_FUZZ_SECONDS})
    set(_secs 20)
  else()
    set(_secs $ENV{EP_FUZZ_SECONDS})
  endif()
  add_test(NAME fuzz/${name}
    COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
      sh -c "mkdir -p ${_work} && exec $<TARGET_FILE:fuzz_${name}> -max_total_time=${_secs} -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 ${_work} ${_corpus}")
  set_tests_properties(fuzz/${name} PROPERTIES TIMEOUT 300 LABELS fuzz)
endfunction()
