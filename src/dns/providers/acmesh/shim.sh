# shellcheck shell=sh
# certfleet's stand-in for the parts of acme.sh that dnsapi/dns_*.sh scripts call.
#
# It is sourced (never executed) by the acmesh bridge before the provider script, in a fresh
# `sh -c` per add/rm call. Credentials arrive as environment variables (the bridge's `env` config),
# so the account-conf helpers read them from the environment and saving is a no-op: certfleet's
# config is the single source of truth. All log output goes to stderr so that `$(...)` captures in
# the scripts only ever see response bodies.

USER_AGENT="${USER_AGENT:-certfleet-acmesh-bridge}"
_certfleet_tmp="$(mktemp -d "${TMPDIR:-/tmp}/certfleet-acmesh.XXXXXX")" || exit 90
trap 'rm -rf "$_certfleet_tmp"' EXIT
HTTP_HEADER="$_certfleet_tmp/http.header"
: >"$HTTP_HEADER"

# ---- logging -------------------------------------------------------------------------------
_printargs() {
  if [ -z "$2" ]; then
    printf "%s\n" "$1"
  else
    printf "%s='%s'\n" "$1" "$2"
  fi
}
_info() { _printargs "$@" >&2; }
_warn() { _printargs "[warn] $1" "$2" >&2; }
_err() { _printargs "[error] $1" "$2" >&2; return 1; }
_debug() { [ "${DEBUG:-0}" -ge 1 ] 2>/dev/null && _printargs "[debug] $1" "$2" >&2; return 0; }
_debug2() { [ "${DEBUG:-0}" -ge 2 ] 2>/dev/null && _printargs "[debug2] $1" "$2" >&2; return 0; }
_debug3() { [ "${DEBUG:-0}" -ge 3 ] 2>/dev/null && _printargs "[debug3] $1" "$2" >&2; return 0; }
# Secrets are never printed, whatever the debug level.
_secure_debug() { _debug "$1" "[hidden]"; }
_secure_debug2() { _debug2 "$1" "[hidden]"; }
_secure_debug3() { _debug3 "$1" "[hidden]"; }

# ---- account / domain configuration (environment-backed) -----------------------------------
_certfleet_getvar() {
  case "$1" in
    *[!A-Za-z0-9_]* | '' | [0-9]*) return 1 ;;
  esac
  eval "printf '%s' \"\${$1:-}\""
}
_readaccountconf() { _certfleet_getvar "$1"; }
_readaccountconf_mutable() {
  _v="$(_certfleet_getvar "$1")"
  [ -z "$_v" ] && _v="$(_certfleet_getvar "SAVED_$1")"
  printf '%s' "$_v"
}
_saveaccountconf() { return 0; }
_saveaccountconf_mutable() { return 0; }
_clearaccountconf() { return 0; }
_clearaccountconf_mutable() { return 0; }
_readdomainconf() { _certfleet_getvar "$1"; }
_savedomainconf() { return 0; }
_cleardomainconf() { return 0; }
_getdeployconf() { _certfleet_getvar "$1"; }
_savedeployconf() { return 0; }

# ---- string helpers ------------------------------------------------------------------------
_exists() { [ -n "$1" ] && command -v "$1" >/dev/null 2>&1; }
# Like acme.sh: the second argument is a basic regular expression.
_contains() { printf '%s\n' "$1" | grep -- "$2" >/dev/null 2>&1; }
_startswith() { case "$1" in "$2"*) return 0 ;; esac; return 1; }
_endswith() { case "$1" in *"$2") return 0 ;; esac; return 1; }
_egrep_o() { grep -E -o -- "$1" 2>/dev/null; }
_head_n() { head -n "$1"; }
_tail_n() { tail -n "$1"; }
_lower_case() { tr '[:upper:]' '[:lower:]'; }
_upper_case() { tr '[:lower:]' '[:upper:]'; }
_math() { printf "%s" "$(($*))"; }
_sleep() { sleep "$1"; }
_time() { date -u "+%s"; }
_utc_date() { date -u "+%Y-%m-%d %H:%M:%S"; }
_mktemp() { mktemp "$_certfleet_tmp/tmp.XXXXXX"; }
# _getfield "a,b,c" 2 [sep] -> b
_getfield() { printf '%s' "$1" | cut -d "${3:-,}" -f "$2"; }
# _hasfield "a,b,c" b [sep]
_hasfield() {
  _hf_sep="${3:-,}"
  case "$_hf_sep$1$_hf_sep" in *"$_hf_sep$2$_hf_sep"*) return 0 ;; esac
  return 1
}
_normalizeJson() {
  sed "s/\" *: *\([\"{\[]\)/\":\1/g" | sed "s/^ *\([^ ]\)/\1/" | tr -d "\r\n"
}
_json_decode() { sed 's/\\\//\//g'; }
# stdin -> percent-encoded (RFC 3986 unreserved characters kept)
_url_encode() {
  LC_ALL=C od -An -v -tx1 | awk '{
    for (i = 1; i <= NF; i++) {
      c = $i
      n = (index("0123456789abcdef", substr(c, 1, 1)) - 1) * 16 + index("0123456789abcdef", substr(c, 2, 1)) - 1
      if ((n >= 48 && n <= 57) || (n >= 65 && n <= 90) || (n >= 97 && n <= 122) || n == 45 || n == 46 || n == 95 || n == 126)
        printf "%c", n
      else
        printf "%%%s", toupper(c)
    }
  }'
}
_hex_dump() { od -A n -v -t x1 | tr -s " " | sed 's/ $//' | tr -d "\r\t\n"; }
_ascii_hex() { printf '%s' "$1" | od -A n -v -t x1 | tr -d " \n" | sed 's/\(..\)/%\1/g'; }
# hex string on stdin -> bytes
_h2b() {
  _h2b_hex="$(tr -d ' \n')"
  while [ -n "$_h2b_hex" ]; do
    _h2b_byte="$(printf '%s' "$_h2b_hex" | cut -c1-2)"
    _h2b_hex="$(printf '%s' "$_h2b_hex" | cut -c3-)"
    # shellcheck disable=SC2059
    printf "\\$(printf '%03o' "0x$_h2b_byte")"
  done
}
# [multiline]
_base64() {
  if [ "$1" ]; then base64; else base64 | tr -d '\r\n'; fi
}
_dbase64() { base64 -d 2>/dev/null; }
# alg [hex]
_digest() {
  if [ "$2" ]; then
    openssl dgst -"$1" -hex | cut -d = -f 2 | tr -d ' '
  else
    openssl dgst -"$1" -binary | _base64
  fi
}
# alg hexkey [hex]
_hmac() {
  if [ "$3" ]; then
    openssl dgst -"$1" -mac HMAC -macopt "hexkey:$2" | cut -d = -f 2 | tr -d ' '
  else
    openssl dgst -"$1" -mac HMAC -macopt "hexkey:$2" -binary | _base64
  fi
}

# ---- HTTP (curl) ---------------------------------------------------------------------------
_inithttp() {
  _ACME_CURL="curl --silent --show-error -L --dump-header $HTTP_HEADER"
  [ -n "$CA_BUNDLE" ] && _ACME_CURL="$_ACME_CURL --cacert $CA_BUNDLE"
  [ -n "$HTTPS_INSECURE" ] && _ACME_CURL="$_ACME_CURL --insecure"
  return 0
}

# body url [needbase64] [POST|PUT|DELETE|PATCH|HEAD] [content-type]
_post() {
  _inithttp
  _p_method="${4:-POST}"
  _debug "$_p_method" "$2"
  _debug2 body "$1"
  _p_extra=""
  [ "$_p_method" = "HEAD" ] && _p_extra="-I"
  if [ -n "$5" ]; then
    response="$($_ACME_CURL $_p_extra --user-agent "$USER_AGENT" -X "$_p_method" -H "Content-Type: $5" \
      -H "$_H1" -H "$_H2" -H "$_H3" -H "$_H4" -H "$_H5" --data "$1" "$2")"
  else
    response="$($_ACME_CURL $_p_extra --user-agent "$USER_AGENT" -X "$_p_method" \
      -H "$_H1" -H "$_H2" -H "$_H3" -H "$_H4" -H "$_H5" --data "$1" "$2")"
  fi
  _ret="$?"
  [ "$_ret" != "0" ] && _err "curl error $_ret for $_p_method $2"
  if [ -n "$3" ]; then
    printf "%s" "$response" | _base64
  else
    printf "%s" "$response"
  fi
  return "$_ret"
}

# url [onlyheader] [timeout]
_get() {
  _inithttp
  _debug GET "$1"
  _g_timeout=""
  [ -n "$3" ] && _g_timeout="--max-time $3"
  if [ -n "$2" ]; then
    $_ACME_CURL $_g_timeout -I --user-agent "$USER_AGENT" -H "$_H1" -H "$_H2" -H "$_H3" -H "$_H4" -H "$_H5" "$1"
  else
    $_ACME_CURL $_g_timeout --user-agent "$USER_AGENT" -H "$_H1" -H "$_H2" -H "$_H3" -H "$_H4" -H "$_H5" "$1"
  fi
  _ret="$?"
  [ "$_ret" != "0" ] && _err "curl error $_ret for GET $1"
  return "$_ret"
}
