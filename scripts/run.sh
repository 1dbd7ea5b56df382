#!/usr/bin/env bash
# Run the whole stack under supervisord in the foreground; Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-services.sh
. scripts/env.sh
cat <<MSG

Taskline is starting. Ctrl-C stops it.
  API docs         http://$TASKLINE_API_HOST:$TASKLINE_API_PORT/docs
  Flower           http://$TASKLINE_FLOWER_HOST:$TASKLINE_FLOWER_PORT  ($TASKLINE_FLOWER_USER / $TASKLINE_FLOWER_PASSWORD)
  Console          http://$TASKLINE_CONSOLE_HOST:$TASKLINE_CONSOLE_PORT  ($TASKLINE_CONSOLE_USER / $TASKLINE_CONSOLE_PASSWORD)
  Logs             $TASKLINE_RUN_DIR/

MSG
exec .venv/bin/supervisord -c supervisord.conf
