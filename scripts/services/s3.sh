# An S3-compatible server for the tests of `acd-log serve --tiles s3://...`:
# moto's server (PyPI `moto[server]`, pinned), run on a free loopback port.
# moto implements the S3 REST API (SigV4-signed PUT/GET, object metadata
# such as Content-Type and Cache-Control, bucket policies) in one small
# Python process that starts in about a second; no disks, no cluster.
# A bucket is created with a public-read policy, so that the test reads the
# published files back through plain unsigned HTTP, as a browser or the
# monitor would. Exports ACD_TEST_S3_ENDPOINT, ACD_TEST_S3_BUCKET,
# ACD_TEST_S3_ACCESS_KEY, ACD_TEST_S3_SECRET_KEY, ACD_TEST_S3_REGION.

MOTO_VERSION=5.2.5
MOTO_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/acd/moto-$MOTO_VERSION"

service_install() {
    [ -f "$MOTO_VENV/.installed" ] && return 0
    rm -rf "$MOTO_VENV"
    python3 -m venv "$MOTO_VENV" 2>/dev/null || {
        apt_install python3-venv
        python3 -m venv "$MOTO_VENV"
    }
    "$MOTO_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
    touch "$MOTO_VENV/.installed"
}

service_start() {
    local port dir
    port="$(free_port)"
    dir="$ACD_SCRATCH/s3"
    mkdir -p "$dir"
    "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/server.log" 2>&1 &
    local pid=$!
    on_exit "kill $pid"
    local i
    for i in $(seq 1 100); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    export ACD_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
    export ACD_TEST_S3_BUCKET="acd-tiles"
    export ACD_TEST_S3_ACCESS_KEY="acd-test"
    export ACD_TEST_S3_SECRET_KEY="acd-test-secret"
    export ACD_TEST_S3_REGION="us-east-1"
    AWS_ACCESS_KEY_ID="$ACD_TEST_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$ACD_TEST_S3_SECRET_KEY" \
        "$MOTO_VENV/bin/python" - "$ACD_TEST_S3_ENDPOINT" "$ACD_TEST_S3_BUCKET" "$ACD_TEST_S3_REGION" <<'PY'
import json, sys
import boto3
endpoint, bucket, region = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region)
s3.create_bucket(Bucket=bucket)
s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                   "Resource": f"arn:aws:s3:::{bucket}/*"}],
}))
PY
    echo "s3 (moto $MOTO_VERSION): $ACD_TEST_S3_ENDPOINT bucket $ACD_TEST_S3_BUCKET"
}
