# Keeps a reused build directory (pyproject.toml: build-dir) incremental.
#
# pip builds in a fresh, randomly named environment each time (build
# isolation), and MLX's headers and nanobind's sources live there. Compiled
# from those paths, every object file would be rebuilt at every install:
# the compile commands name a new directory, and the files in it are new.
# So the build reads copies instead, kept in the build directory under
# fixed names and rewritten only where their content changed: a second
# install with the same MLX and nanobind recompiles nothing, and another
# MLX or nanobind release recompiles exactly what its changed files touch.
#
#   mfi_stable_copy(<source dir> <dest dir>)

function(mfi_stable_copy src dst)
  file(GLOB_RECURSE _files LIST_DIRECTORIES false RELATIVE "${src}" "${src}/*")
  # Files gone from the source (another release) must not linger in the copy.
  if(EXISTS "${dst}")
    file(GLOB_RECURSE _old LIST_DIRECTORIES false RELATIVE "${dst}" "${dst}/*")
    foreach(f IN LISTS _old)
      if(NOT f IN_LIST _files)
        file(REMOVE "${dst}/${f}")
      endif()
    endforeach()
  endif()
  foreach(f IN LISTS _files)
    if(f MATCHES "__pycache__")
      continue()
    endif()
    get_filename_component(_dir "${dst}/${f}" DIRECTORY)
    file(MAKE_DIRECTORY "${_dir}")
    file(COPY_FILE "${src}/${f}" "${dst}/${f}" ONLY_IF_DIFFERENT)
  endforeach()
endfunction()
