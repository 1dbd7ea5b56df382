#!/usr/bin/env bash
# Run the whole stack under supervisord in the foreground; Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-services.sh
. scripts/env.sh
# With TASKLINE_ENV=production, refuse unsafe settings before anything starts (taskline/core/guard.py).
"$TASKLINE_PYTHON" -m taskline.core.guard supervisord
api="" flower="" console=""
if [ "$TASKLINE_ENV" = development ]; then  # production passwords stay out of terminals and logs
  api="(admin / $TASKLINE_ADMIN_PASSWORD)"
  flower="($TASKLINE_FLOWER_USER / $TASKLINE_FLOWER_PASSWORD)"
  console="($TASKLINE_CONSOLE_USER / $TASKLINE_CONSOLE_PASSWORD)"
fi
cat <<MSG

Taskline ($TASKLINE_ENV) is starting. Ctrl-C stops it. Passwords: .env (\`make secrets\`).
  Dashboard        http://$TASKLINE_API_HOST:$TASKLINE_API_PORT/ui  $api
  Command line     .venv/bin/taskline login -u admin, then: .venv/bin/taskline submit reverse -p text=hi --wait
  API docs         http://$TASKLINE_API_HOST:$TASKLINE_API_PORT/docs  $api
  Flower           http://$TASKLINE_FLOWER_HOST:$TASKLINE_FLOWER_PORT  $flower
  Console          http://$TASKLINE_CONSOLE_HOST:$TASKLINE_CONSOLE_PORT  $console
  Logs             $TASKLINE_RUN_DIR/

MSG
exec .venv/bin/supervisord -c supervisord.conf
