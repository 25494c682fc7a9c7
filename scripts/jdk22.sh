#!/bin/sh
# Prints the home of a JDK 22 or newer: JAVA_HOME when it is one, else the java on the PATH when it is
# one, else the newest under /usr/lib/jvm. Exits 1 with a message when there is none.
#   "$(scripts/jdk22.sh)/bin/java" -version
feature() {
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p'
}
if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && [ "$(feature "$JAVA_HOME/bin/java")" -ge 22 ] 2>/dev/null; then
  echo "$JAVA_HOME"; exit 0
fi
onpath=$(command -v java || true)
if [ -n "$onpath" ] && [ "$(feature "$onpath")" -ge 22 ] 2>/dev/null; then
  home=$(dirname "$(dirname "$(readlink -f "$onpath")")")
  echo "$home"; exit 0
fi
best="" best_v=0
for jdk in /usr/lib/jvm/*; do
  [ -x "$jdk/bin/java" ] && [ -x "$jdk/bin/javac" ] || continue
  v=$(feature "$jdk/bin/java")
  if [ "${v:-0}" -gt "$best_v" ] 2>/dev/null; then best=$jdk best_v=$v; fi
done
if [ "$best_v" -ge 22 ] 2>/dev/null; then
  echo "$best"; exit 0
fi
echo "no JDK 22 or newer found (JAVA_HOME=${JAVA_HOME:-unset}, PATH, /usr/lib/jvm)" >&2
exit 1
