# Writes kubeca.1 with help2man from the binary's own help: `kubeca --help` and
# `--version` for the page, and each command's `kubeca COMMAND --help` as a section.
# cmake -DKUBECA=bin -DHELP2MAN=help2man -DOUT=kubeca.1 -P manpage.cmake
execute_process(COMMAND ${KUBECA} --help OUTPUT_VARIABLE top RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kubeca --help failed")
endif()
string(REGEX MATCHALL "\n  [a-z]+ " lines "${top}")
set(include "[COMMANDS]\n")
foreach(line ${lines})
  string(STRIP "${line}" cmd)
  execute_process(COMMAND ${KUBECA} ${cmd} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "kubeca ${cmd} --help failed")
  endif()
  # roff: a leading dot or quote starts a request, a backslash an escape.
  string(REPLACE "\\" "\\e" help "${help}")
  string(REGEX REPLACE "\n([.'])" "\n\\\\&\\1" help "\n${help}")
  string(APPEND include ".SS ${cmd}\n.nf\n${help}\n.fi\n")
endforeach()
string(APPEND include "[SEE ALSO]\nThe operator guide, docs/operator-guide.md, and the HTTPS API, docs/api.md,\nin kubeca's sources.\n")
file(WRITE ${OUT}.include "${include}")
execute_process(COMMAND ${HELP2MAN} --no-info --section=1
                        "--name=the certificate authority of a Kubernetes cluster"
                        --include=${OUT}.include --output=${OUT} ${KUBECA}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man failed")
endif()
