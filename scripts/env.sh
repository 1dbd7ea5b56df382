# Export the Taskline settings: .env.example's defaults, overridden by .env, then by the
# caller's environment. Sourced by the other scripts.
_taskline_load() {
  local file line key
  for file in .env.example .env; do
    [ -f "$file" ] || continue
    while IFS= read -r line || [ -n "$line" ]; do
      case "$line" in ''|'#'*) continue ;; esac
      key=${line%%=*}
      if [ -z "${!key+x}" ] || [ -n "${_taskline_from_file[$key]:-}" ]; then
        export "$line"
        _taskline_from_file[$key]=1
      fi
    done < "$file"
  done
}
declare -A _taskline_from_file=()
_taskline_load
export TASKLINE_RUN_DIR="${TASKLINE_RUN_DIR:-$PWD/var}"
export TASKLINE_PYTHON="${TASKLINE_PYTHON:-$PWD/.venv/bin/python}"
mkdir -p "$TASKLINE_RUN_DIR"
