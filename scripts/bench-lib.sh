# Shared by the scripts/bench-*.sh scripts (sourced, not run).

# Waits up to 10 s until something listens on 127.0.0.1:$1.
wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2; return 1
}
