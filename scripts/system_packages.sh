# Source this file: makes sure the system programs the grading tests start themselves are
# installed: bubblewrap (the grading sandbox), PostgreSQL's server programs (a real
# gradebook server), and for the JupyterHub test its proxy (configurable-http-proxy), a
# Python every user can run with its venv module, and Chromium with its driver (the browser
# the test drives). Installs them with apt-get when missing and this is root (or sudo works
# without a password); otherwise says what to install. Sets CRSKY_REQUIRE_SANDBOX=1 when
# bubblewrap is there and CRSKY_REQUIRE_HUB=1 when this is root and the hub's programs are
# there, so that those tests fail, not skip, if they do not work.
_crsky_missing=()
command -v bwrap >/dev/null 2>&1 || _crsky_missing+=(bubblewrap)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 \
    || _crsky_missing+=(postgresql)
for _crsky_tool in setpriv prlimit unshare; do
    command -v "$_crsky_tool" >/dev/null 2>&1 || _crsky_missing+=(util-linux)
done
if [ "$(id -u)" = 0 ]; then  # the hub spawns servers as other Unix users: root only
    command -v configurable-http-proxy >/dev/null 2>&1 || _crsky_missing+=(node-configurable-http-proxy)
    command -v chromium >/dev/null 2>&1 || _crsky_missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || _crsky_missing+=(chromium-driver)
    /usr/bin/python3 -c "import ensurepip, venv" >/dev/null 2>&1 || _crsky_missing+=(python3-venv)
fi
if [ "${#_crsky_missing[@]}" -gt 0 ]; then
    _crsky_apt=()
    if [ "$(id -u)" = 0 ]; then _crsky_apt=(apt-get); elif sudo -n true 2>/dev/null; then _crsky_apt=(sudo -n apt-get); fi
    if [ "${#_crsky_apt[@]}" -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing ${_crsky_missing[*]} (what the grading and hub tests start)"
        DEBIAN_FRONTEND=noninteractive "${_crsky_apt[@]}" update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive "${_crsky_apt[@]}" install -y -qq --no-install-recommends \
            "${_crsky_missing[@]}" >/dev/null
    else
        echo "warning: ${_crsky_missing[*]} missing and cannot be installed here (not root, no sudo, or no apt-get):" >&2
        echo "         the grading tests that need them will be skipped or fail; install them and run again." >&2
    fi
fi
if command -v bwrap >/dev/null 2>&1; then export CRSKY_REQUIRE_SANDBOX=1; fi
# The hub test needs every one of the hub's programs checked above, not only some.
if [ "$(id -u)" = 0 ] && command -v configurable-http-proxy >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 \
        && command -v chromedriver >/dev/null 2>&1 && /usr/bin/python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    export CRSKY_REQUIRE_HUB=1
fi
unset _crsky_missing _crsky_apt _crsky_tool
