# Export the Taskline settings as core.settings reads them (its defaults, then .env, then the
# caller's environment), so supervisord and every process see the same values. Sourced by
# the other scripts, once .venv exists. Every file they create (logs, Redis's) is the owner's
# only, and so is the run folder.
umask 077
export TASKLINE_RUN_DIR="${TASKLINE_RUN_DIR:-$PWD/var}"
export TASKLINE_PYTHON="${TASKLINE_PYTHON:-$PWD/.venv/bin/python}"
_taskline_settings="$("$TASKLINE_PYTHON" -m taskline.core.settings --shell)" || return 1
eval "$_taskline_settings"
unset _taskline_settings
mkdir -p "$TASKLINE_RUN_DIR"
chmod 700 "$TASKLINE_RUN_DIR"
# supervisord's worker of each line but the main one (supervisord.conf includes the file).
"$TASKLINE_PYTHON" -m taskline.core.settings --line-workers > "$TASKLINE_RUN_DIR/lines.conf"
