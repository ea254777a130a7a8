# PostgreSQL from Debian's packages, run as the unprivileged user `postgres`
# (root cannot run it) on a free loopback port, in a scratch cluster.
# Exports ACD_TEST_POSTGRES_URL: a superuser URL; each test makes its own
# database under it.

service_install() {
    apt_install postgresql
}

service_start() {
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
    local dir="$ACD_SCRATCH/postgres"
    local port
    port="$(free_port)"
    local run=()
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        run=(runuser -u postgres --)
    fi
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir" && chmod 755 "$ACD_SCRATCH"
    "${run[@]}" "$bin/initdb" -D "$dir/data" -U acd --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=on" start >/dev/null
    on_exit "${run[*]} $bin/pg_ctl -D $dir/data -m immediate stop >/dev/null 2>&1"
    export ACD_TEST_POSTGRES_URL="postgres://acd@127.0.0.1:$port/postgres"
    export ACD_TEST_PG_BIN="$bin"
    export ACD_TEST_PG_DATA="$dir/data"
    echo "postgres: $ACD_TEST_POSTGRES_URL"
}
