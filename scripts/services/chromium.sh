# Debian's Chromium, driven by playwright-core from npm (the version
# tests/browser/package-lock.json pins, installed with `npm ci` into
# tests/browser/node_modules): the log explorer's browser test
# (tests/explorer.rs) runs tests/browser/explorer.mjs in it, headless.
# Exports ACD_TEST_CHROMIUM: the browser binary.

service_install() {
    command -v chromium >/dev/null 2>&1 || apt_install chromium
    command -v node >/dev/null 2>&1 || apt_install nodejs npm
    if [ ! -d tests/browser/node_modules/playwright-core ]; then
        (cd tests/browser && npm ci --no-audit --no-fund --silent)
    fi
}

service_start() {
    local bin
    bin="$(command -v chromium)"
    "$bin" --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1 \
        || { echo "chromium: $bin does not run" >&2; return 1; }
    export ACD_TEST_CHROMIUM="$bin"
    echo "chromium: $ACD_TEST_CHROMIUM ($("$bin" --version 2>/dev/null)), playwright-core $(node -p 'require("./tests/browser/node_modules/playwright-core/package.json").version')"
}
