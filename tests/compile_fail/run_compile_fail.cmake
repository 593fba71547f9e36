# Compiles SOURCE twice: as is it must fail with every string of EXPECT (a ;-list) in the compiler's
# output; with -DGRCNN_EXPECT_OK it must succeed.
separate_arguments(flags UNIX_COMMAND "${FLAGS}")
execute_process(COMMAND ${CXX} ${flags} -fsyntax-only -DGRCNN_EXPECT_OK ${SOURCE}
                RESULT_VARIABLE ok_rc OUTPUT_VARIABLE ok_out ERROR_VARIABLE ok_err)
if(NOT ok_rc EQUAL 0)
  message(FATAL_ERROR "the control build (-DGRCNN_EXPECT_OK) of ${SOURCE} failed:\n${ok_err}")
endif()
execute_process(COMMAND ${CXX} ${flags} -fsyntax-only ${SOURCE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must be rejected")
endif()
foreach(e IN LISTS EXPECT)
  string(FIND "${err}" "${e}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "the compiler rejected ${SOURCE}, but its message lacks '${e}':\n${err}")
  endif()
endforeach()
message(STATUS "rejected as expected; the diagnostic names: ${EXPECT}")
