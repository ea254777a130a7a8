# nginx from Debian's packages, a plain static web server with no acd code
# in it: the tests of the published read path (tests/static_read_path.rs)
# start their own nginx on a free loopback port, with a config under their
# own scratch directory serving the directory the log publishes into.
# Exports ACD_TEST_NGINX: the nginx binary.

service_install() {
    if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
        apt_install nginx
    fi
}

service_start() {
    local bin
    bin="$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)"
    "$bin" -v >/dev/null 2>&1 || { echo "nginx: $bin does not run" >&2; return 1; }
    export ACD_TEST_NGINX="$bin"
    echo "nginx: $ACD_TEST_NGINX ($("$bin" -v 2>&1))"
}
