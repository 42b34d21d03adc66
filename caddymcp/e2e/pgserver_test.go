//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testflow"
)

// pgServer is a PostgreSQL server of a test's own, in a temporary folder,
// that the test may stop and start at will. It is never the shared server
// of CADDYMCP_TEST_DATABASE_URL.
type pgServer struct {
	t        *testing.T
	bindir   string
	dir      string // the temporary folder: data/, sock/, server.log
	runAs    string // OS user that runs the server; "" for the current one
	port     int
	password string
}

// pgBindir finds the folder holding initdb, pg_ctl and postgres, the way
// scripts/lib/postgres.sh does: CADDYMCP_TEST_PG_BINDIR, initdb on PATH,
// pg_config --bindir, then /usr/lib/postgresql/*/bin, newest first.
func pgBindir() (string, bool) {
	usable := func(dir string) bool {
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("CADDYMCP_TEST_PG_BINDIR"); dir != "" && usable(dir) {
		return dir, true
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && usable(filepath.Dir(real)) {
			return filepath.Dir(real), true
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); dir != "" && usable(dir) {
			return dir, true
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	major := func(d string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		return n
	}
	slices.SortFunc(dirs, func(a, b string) int { return major(b) - major(a) })
	for _, d := range dirs {
		if usable(d) {
			return d, true
		}
	}
	return "", false
}

// pgUnavailable skips the test, or fails it under CI=true, where nothing
// may be skipped.
func pgUnavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: this test needs its own PostgreSQL server (install postgresql-15 or set CADDYMCP_TEST_PG_BINDIR)", msg)
	}
	t.Skipf("%s; install PostgreSQL (or set CADDYMCP_TEST_PG_BINDIR) to run this test", msg)
}

// startPGServer creates and starts a private server, removed when the test
// ends. As root it runs as the postgres OS user (CADDYMCP_TEST_PG_RUNAS
// names another), since PostgreSQL refuses to run as root.
func startPGServer(t *testing.T) *pgServer {
	t.Helper()
	bindir, ok := pgBindir()
	if !ok {
		pgUnavailable(t, "initdb and pg_ctl not found (CADDYMCP_TEST_PG_BINDIR, PATH, pg_config, /usr/lib/postgresql/*/bin)")
	}
	s := &pgServer{t: t, bindir: bindir}
	base := os.TempDir()
	var owner *user.User
	if os.Geteuid() == 0 {
		s.runAs = os.Getenv("CADDYMCP_TEST_PG_RUNAS")
		if s.runAs == "" {
			s.runAs = "postgres"
		}
		var err error
		if owner, err = user.Lookup(s.runAs); err != nil {
			pgUnavailable(t, "running as root, but there is no %q OS user to run PostgreSQL: %v", s.runAs, err)
		}
		base = "/tmp" // a folder the server's user can reach
	}
	dir, err := os.MkdirTemp(base, "caddymcp-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	s.dir = dir
	t.Cleanup(s.destroy)
	if err := os.Mkdir(filepath.Join(dir, "sock"), 0o700); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	s.password = hex.EncodeToString(b)
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		for _, p := range []string{dir, filepath.Join(dir, "sock"), pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	if out, err := s.pg("initdb", "-D", s.data(), "--auth=scram-sha-256", "--username=postgres",
		"--pwfile="+pwfile, "--encoding=UTF8", "--no-instructions"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	_ = os.Remove(pwfile)
	// A free port can be taken before the server binds it: try a few.
	for attempt := 1; ; attempt++ {
		s.port = testflow.FreePort(t)
		conf := fmt.Sprintf("\n# private e2e server\nport = %d\nlisten_addresses = '127.0.0.1'\n"+
			"unix_socket_directories = '%s'\nfsync = off\nmax_connections = 100\n", s.port, filepath.Join(dir, "sock"))
		f, err := os.OpenFile(filepath.Join(s.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString(conf)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.pg("pg_ctl", "-D", s.data(), "-l", s.logFile(), "-w", "-t", "60", "start")
		if err == nil {
			return s
		}
		if attempt == 3 {
			t.Fatalf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, s.serverLog())
		}
	}
}

func (s *pgServer) data() string    { return filepath.Join(s.dir, "data") }
func (s *pgServer) logFile() string { return filepath.Join(s.dir, "server.log") }

func (s *pgServer) serverLog() string {
	b, _ := os.ReadFile(s.logFile())
	return string(b)
}

// pg runs one of the server's programs as its OS user.
func (s *pgServer) pg(prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name, argv := filepath.Join(s.bindir, prog), args
	if s.runAs != "" {
		name, argv = "runuser", append([]string{"-u", s.runAs, "--", name}, args...)
	}
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// URL is the superuser's connection URL for database db.
func (s *pgServer) URL(db string) string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", s.password, s.port, db)
}

// stop stops the server abruptly, as a crash would: in-flight
// transactions are cut off and rolled back at the next start.
func (s *pgServer) stop() {
	s.t.Helper()
	if out, err := s.pg("pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "-t", "60", "stop"); err != nil {
		s.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// start starts the stopped server again on the same port.
func (s *pgServer) start() {
	s.t.Helper()
	if out, err := s.pg("pg_ctl", "-D", s.data(), "-l", s.logFile(), "-w", "-t", "60", "start"); err != nil {
		s.t.Fatalf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, s.serverLog())
	}
}

// connect opens a connection to database db, for checks with SQL.
func (s *pgServer) connect(db string) *pgx.Conn {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		s.t.Fatalf("connecting to the private server: %v", err)
	}
	s.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// destroy stops the server if it runs and removes its folder.
func (s *pgServer) destroy() {
	pidFile := filepath.Join(s.data(), "postmaster.pid")
	if _, err := os.Stat(pidFile); err == nil {
		_, _ = s.pg("pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "-t", "30", "stop")
	}
	// Last resort: the server's own process id, from its data folder.
	if b, err := os.ReadFile(pidFile); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if pid, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && pid > 1 {
			if syscall.Kill(pid, 0) == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				time.Sleep(time.Second)
			}
		}
	}
	_ = os.RemoveAll(s.dir)
}
