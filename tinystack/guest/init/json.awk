# Flatten a JSON document on stdin into "path<TAB>value" lines, e.g. "public_keys.mykey<TAB>ssh-ed25519 ...".
# Object keys and array indexes are joined with "."; strings are unescaped (newlines become "\n" again so
# that each value stays on one line). Enough JSON for metadata documents, in busybox awk.
BEGIN { RS = "\001"; FS = "\001" }
{ s = s $0 }
END {
    n = length(s); pos = 1
    hex = "0123456789abcdef"
    value("")
}
function ws() { while (pos <= n && index(" \t\r\n", substr(s, pos, 1)) > 0) pos++ }
function join(path, k) { return path == "" ? k : path "." k }
function value(path,    c, lit) {
    ws(); c = substr(s, pos, 1)
    if (c == "{") object(path)
    else if (c == "[") array(path)
    else if (c == "\"") print path "\t" str()
    else {
        lit = substr(s, pos)
        if (match(lit, /^[-+0-9.eEa-z]+/)) { print path "\t" substr(lit, 1, RLENGTH); pos += RLENGTH }
        else { print "json: unexpected input at offset " pos > "/dev/stderr"; exit 1 }
    }
}
function object(path,    k, c) {
    pos++; ws()
    if (substr(s, pos, 1) == "}") { pos++; return }
    while (pos <= n) {
        ws(); k = str(); ws(); pos++
        value(join(path, k)); ws()
        c = substr(s, pos, 1); pos++
        if (c != ",") return
    }
}
function array(path,    i, c) {
    pos++; ws()
    if (substr(s, pos, 1) == "]") { pos++; return }
    i = 0
    while (pos <= n) {
        value(join(path, i)); i++; ws()
        c = substr(s, pos, 1); pos++
        if (c != ",") return
    }
}
function hexval(h,    i, v) {
    v = 0; h = tolower(h)
    for (i = 1; i <= length(h); i++) v = v * 16 + index(hex, substr(h, i, 1)) - 1
    return v
}
function str(    out, c, v) {
    pos++; out = ""
    while (pos <= n) {
        c = substr(s, pos, 1); pos++
        if (c == "\"") return out
        if (c != "\\") { out = out c; continue }
        c = substr(s, pos, 1); pos++
        if (c == "n") out = out "\\n"
        else if (c == "t") out = out "\t"
        else if (c == "r" || c == "b" || c == "f") continue
        else if (c == "u") { v = hexval(substr(s, pos, 4)); pos += 4; out = out (v >= 32 && v < 127 ? sprintf("%c", v) : "?") }
        else out = out c
    }
    return out
}
