# node/web/assets.cmake — embeds the web pages (docs/WEB.md) in the node binary. Included by the
# root CMakeLists.txt (`include(node/web/assets.cmake OPTIONAL)`); appends the generated C file to
# SJ_NODE_EXTRA_SRCS, which the root adds to sj_node. A new asset is one more name below.
set(SJ_WEB_FILES index.html app.js i18n.mjs verify.mjs style.css map.svg icon.svg)
set(sj_web_dir ${CMAKE_CURRENT_LIST_DIR})
set(sj_web_out ${CMAKE_BINARY_DIR}/gen/web_assets.c)
set(sj_web_deps ${sj_web_dir}/embed_web.cmake ${sj_web_dir}/web_assets.h)
foreach(f ${SJ_WEB_FILES})
  list(APPEND sj_web_deps ${sj_web_dir}/${f})
endforeach()
string(REPLACE ";" "," sj_web_list "${SJ_WEB_FILES}")
add_custom_command(OUTPUT ${sj_web_out}
  COMMAND ${CMAKE_COMMAND} -DDIR=${sj_web_dir} -DFILES=${sj_web_list} -DOUT=${sj_web_out}
          -P ${sj_web_dir}/embed_web.cmake
  DEPENDS ${sj_web_deps}
  COMMENT "Embedding web assets")
list(APPEND SJ_NODE_EXTRA_SRCS ${sj_web_out})
