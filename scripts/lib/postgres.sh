# shellcheck shell=bash
# Throwaway PostgreSQL server for tests. Source this file, then:
#
#   pg_start_throwaway   # starts a private server on 127.0.0.1 and exports
#                        #   CADDYMCP_TEST_DATABASE_URL  postgres://postgres:<pw>@127.0.0.1:<port>/postgres?sslmode=disable
#                        #   CADDYMCP_TEST_PG_BINDIR     folder holding pg_ctl, postgres, initdb
#                        #   CADDYMCP_TEST_PG_DATADIR    data folder (settings live in its postgresql.conf,
#                        #                               so a plain `pg_ctl -D <datadir> start` restarts it)
#                        #   CADDYMCP_TEST_PG_PORT       TCP port
#                        #   CADDYMCP_TEST_PG_RUNAS      OS user that must run pg_ctl (empty: the current user)
#                        #   CADDYMCP_TEST_PG_LOGFILE    server log
#   pg_stop_throwaway    # stops it and removes every file; safe to call repeatedly
#
# Both return non-zero on failure and never exit the calling shell.

_PG_TMPDIR=${_PG_TMPDIR:-}
_PG_BINDIR=${_PG_BINDIR:-}

# Prints the folder holding initdb/pg_ctl/postgres, or returns 1.
_pg_find_bindir() {
	local p dir
	# Symlinks (e.g. /usr/local/bin/initdb) are followed to the real folder.
	if p=$(command -v initdb 2>/dev/null) && p=$(readlink -f "$p") && [[ -x $(dirname "$p")/pg_ctl ]]; then
		dirname "$p"
		return 0
	fi
	if command -v pg_config >/dev/null 2>&1; then
		dir=$(pg_config --bindir 2>/dev/null || true)
		if [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]]; then
			echo "$dir"
			return 0
		fi
	fi
	# Debian/Ubuntu layout, newest major version first.
	while IFS= read -r dir; do
		if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
			echo "$dir"
			return 0
		fi
	done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
	return 1
}

# Runs a command as the server's OS user.
_pg_as() {
	if [[ -n ${CADDYMCP_TEST_PG_RUNAS:-} ]]; then
		runuser -u "$CADDYMCP_TEST_PG_RUNAS" -- "$@"
	else
		"$@"
	fi
}

_pg_free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

pg_start_throwaway() {
	if [[ -n $_PG_TMPDIR ]]; then
		echo "postgres: a throwaway server is already running" >&2
		return 1
	fi

	local bindir
	if ! bindir=$(_pg_find_bindir); then
		if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
			echo "postgres: not found; installing postgresql-15 with apt-get" >&2
			apt-get update -qq &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >&2 ||
				echo "postgres: apt-get install failed" >&2
		fi
		if ! bindir=$(_pg_find_bindir); then
			echo "postgres: initdb not found (looked in PATH, pg_config --bindir, /usr/lib/postgresql/*/bin)" >&2
			return 1
		fi
	fi

	# PostgreSQL refuses to run as root: use the postgres OS user then.
	local runas=""
	if [[ $(id -u) -eq 0 ]]; then
		if ! id postgres >/dev/null 2>&1; then
			echo "postgres: running as root but there is no 'postgres' OS user to run the server" >&2
			return 1
		fi
		runas=postgres
	fi
	export CADDYMCP_TEST_PG_RUNAS=$runas
	_PG_BINDIR=$bindir

	# As root, use /tmp: the postgres user must be able to reach the folder.
	local tmp base=${TMPDIR:-/tmp}
	[[ -z $runas ]] || base=/tmp
	tmp=$(mktemp -d "$base/caddymcp-pg.XXXXXX") || return 1
	_PG_TMPDIR=$tmp
	mkdir "$tmp/sock"
	local data=$tmp/data log=$tmp/server.log pwfile=$tmp/pwfile password
	password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
	(umask 077 && printf '%s\n' "$password" >"$pwfile")
	: >"$log"
	if [[ -n $runas ]]; then
		chown -R "$runas:" "$tmp"
	fi

	if ! _pg_as "$bindir/initdb" -D "$data" --auth=scram-sha-256 --username=postgres \
		--pwfile="$pwfile" --encoding=UTF8 --no-instructions >"$tmp/initdb.log" 2>&1; then
		echo "postgres: initdb failed:" >&2
		cat "$tmp/initdb.log" >&2
		pg_stop_throwaway
		return 1
	fi
	rm -f "$pwfile"

	# A port picked this way can be taken before the server binds it: retry.
	local port attempt started=""
	for attempt in 1 2 3; do
		port=$(_pg_free_port) || break
		# Also written to postgresql.conf so that tests can stop and start the
		# server with a plain `pg_ctl -D <datadir> start`.
		_pg_as tee -a "$data/postgresql.conf" >/dev/null <<-CONF
			# throwaway test server
			port = $port
			listen_addresses = '127.0.0.1'
			unix_socket_directories = '$tmp/sock'
			fsync = off
			max_connections = 200
		CONF
		if _pg_as "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 \
			-o "-p $port -h 127.0.0.1 -k $tmp/sock -c fsync=off -c max_connections=200" \
			start >/dev/null; then
			started=1
			break
		fi
		echo "postgres: start attempt $attempt failed" >&2
	done
	if [[ -z $started ]]; then
		echo "postgres: could not start the server; its log:" >&2
		cat "$log" >&2
		pg_stop_throwaway
		return 1
	fi

	export CADDYMCP_TEST_DATABASE_URL="postgres://postgres:$password@127.0.0.1:$port/postgres?sslmode=disable"
	export CADDYMCP_TEST_PG_BINDIR=$bindir
	export CADDYMCP_TEST_PG_DATADIR=$data
	export CADDYMCP_TEST_PG_PORT=$port
	export CADDYMCP_TEST_PG_LOGFILE=$log
	return 0
}

pg_stop_throwaway() {
	local tmp=$_PG_TMPDIR
	[[ -n $tmp ]] || return 0
	if [[ -d $tmp ]]; then
		if [[ -f $tmp/data/postmaster.pid && -n $_PG_BINDIR ]]; then
			_pg_as "$_PG_BINDIR/pg_ctl" -D "$tmp/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
		fi
		# Last resort: the server's process id, recorded in its own data folder.
		local pid
		if [[ -f $tmp/data/postmaster.pid ]] && pid=$(head -n1 "$tmp/data/postmaster.pid" 2>/dev/null) &&
			[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
			sleep 1
		fi
		rm -rf "$tmp"
	fi
	_PG_TMPDIR=""
	_PG_BINDIR=""
	unset CADDYMCP_TEST_DATABASE_URL CADDYMCP_TEST_PG_BINDIR CADDYMCP_TEST_PG_DATADIR \
		CADDYMCP_TEST_PG_PORT CADDYMCP_TEST_PG_RUNAS CADDYMCP_TEST_PG_LOGFILE
	return 0
}
