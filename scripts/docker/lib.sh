# shellcheck shell=bash
# Shared helpers for scripts/docker/*.sh (sourced, not run), on top of scripts/lib.sh.
# Each script sets `me` (its name for messages) before sourcing this file.

# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../lib.sh"
docker_cache="$cache_root/docker"
mkdir -p "$docker_cache"

# debian_sources: "URI SUITE" for every enabled `deb` source of this machine's apt configuration,
# from one-line (*.list) and deb822 (*.sources) files, so no mirror is ever written into the project.
debian_sources() {
  local files=()
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  shopt -s nullglob
  files+=(/etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  shopt -u nullglob
  local file
  for file in "${files[@]}"; do
    case $file in
      *.list)
        # deb [options] URI SUITE COMPONENT...
        sed -E -e 's/#.*//' -e 's/\[[^]]*\]//' "$file" | awk '$1 == "deb" && NF >= 3 { print $2, $3 }'
        ;;
      *.sources)
        awk '
          function flush(   nu, ns, us, ss, i, j) {
            if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no") {
              nu = split(uris, us, " "); ns = split(suites, ss, " ")
              for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print us[i], ss[j]
            }
            types = uris = suites = ""; enabled = "yes"
          }
          BEGIN { enabled = "yes" }
          /^[[:space:]]*#/ { next }
          /^[[:space:]]*$/ { flush(); next }
          {
            key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
            if (key == "types") types = $0
            else if (key == "uris") uris = $0
            else if (key == "suites") suites = $0
            else if (key == "enabled") enabled = $0
          }
          END { flush() }
        ' "$file"
        ;;
    esac
  done
}
