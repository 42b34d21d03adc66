package caddymcp

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const modulePrefix = "github.com/caddymcp/caddymcp/"

// packageImports reads the imports of the non-test Go files of every
// package under the repository, keyed by package path relative to the
// module ("caddymcp/oauth").
func packageImports(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	graph := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		if _, ok := graph[pkg]; !ok {
			graph[pkg] = nil
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !slices.Contains(graph[pkg], p) {
				graph[pkg] = append(graph[pkg], p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return graph
}

// reaches reports whether pkg imports target, directly or through other
// packages of the module, and the chain that does.
func reaches(graph map[string][]string, pkg, target string) []string {
	seen := map[string]bool{}
	var walk func(p string, chain []string) []string
	walk = func(p string, chain []string) []string {
		for _, imp := range graph[p] {
			if imp == target || strings.HasPrefix(imp, target+"/") {
				return append(chain, imp)
			}
			local, ok := strings.CutPrefix(imp, modulePrefix)
			if !ok || seen[local] {
				continue
			}
			seen[local] = true
			if c := walk(local, append(slices.Clone(chain), imp)); c != nil {
				return c
			}
		}
		return nil
	}
	return walk(pkg, []string{pkg})
}

// TestPackageLayout keeps the dependencies pointing one way, as the
// README's Layout table describes them: only the Caddy adapter imports
// Caddy; the resource server and the tools never reach the authorization
// server; the shared cores import nothing of the module they do not own.
func TestPackageLayout(t *testing.T) {
	graph := packageImports(t)
	for _, must := range []string{"caddymcp", "caddymcp/oauth", "caddymcp/bearer", "caddymcp/tools", "caddymcp/jose"} {
		if _, ok := graph[must]; !ok {
			t.Fatalf("package %s not found; the layout test looks in the wrong place", must)
		}
	}
	const caddy = "github.com/caddyserver/caddy"
	for pkg := range graph {
		if pkg == "caddymcp" {
			continue
		}
		if chain := reaches(graph, pkg, caddy); chain != nil {
			t.Errorf("%s imports Caddy (%s): only package caddymcp may", pkg, strings.Join(chain, " → "))
		}
	}
	never := []struct{ pkg, target string }{
		{"caddymcp/tools", modulePrefix + "caddymcp/oauth"},
		{"caddymcp/tools", modulePrefix + "caddymcp/login"},
		{"caddymcp/bearer", modulePrefix + "caddymcp/oauth"},
		{"caddymcp/bearer", modulePrefix + "caddymcp/login"},
		{"caddymcp/bearer", modulePrefix + "caddymcp/tools"},
		{"caddymcp/oauth", modulePrefix + "caddymcp/bearer"},
		{"caddymcp/oauth", modulePrefix + "caddymcp/tools"},
		{"caddymcp/login", modulePrefix + "caddymcp/bearer"},
		{"caddymcp/store", modulePrefix + "caddymcp/oauth"},
		{"caddymcp/signing", modulePrefix + "caddymcp/oauth"},
		{"caddymcp/signing", modulePrefix + "caddymcp/bearer"},
	}
	for _, n := range never {
		if chain := reaches(graph, n.pkg, n.target); chain != nil {
			t.Errorf("%s must not import %s: %s", n.pkg, strings.TrimPrefix(n.target, modulePrefix), strings.Join(chain, " → "))
		}
	}
	// The shared cores stand on their own.
	for _, leaf := range []string{"caddymcp/jose", "caddymcp/internal/web", "caddymcp/internal/audit", "caddymcp/internal/page",
		"caddymcp/internal/safehttp", "caddymcp/ratelimit", "caddymcp/doctor"} {
		for _, imp := range graph[leaf] {
			if strings.HasPrefix(imp, modulePrefix) {
				t.Errorf("%s imports %s: it must import no other package of the module", leaf, imp)
			}
		}
	}
	for _, imp := range graph["caddymcp/store"] {
		if strings.HasPrefix(imp, modulePrefix) && imp != modulePrefix+"migrations" {
			t.Errorf("store imports %s: it may import only migrations", imp)
		}
	}
	for _, imp := range graph["caddymcp/internal/dpop"] {
		if strings.HasPrefix(imp, modulePrefix) && imp != modulePrefix+"caddymcp/jose" {
			t.Errorf("internal/dpop imports %s: it may import only jose", imp)
		}
	}
}

// TestReachesFindsChains checks the walk the layout test relies on.
func TestReachesFindsChains(t *testing.T) {
	g := map[string][]string{
		"a": {modulePrefix + "b", "fmt"},
		"b": {modulePrefix + "c"},
		"c": {"github.com/caddyserver/caddy/v2"},
		"d": {"fmt"},
	}
	if c := reaches(g, "a", "github.com/caddyserver/caddy"); len(c) != 4 {
		t.Errorf("a → caddy: %v", c)
	}
	if c := reaches(g, "d", "github.com/caddyserver/caddy"); c != nil {
		t.Errorf("d → caddy: %v", c)
	}
	if c := reaches(g, "a", modulePrefix+"c"); len(c) != 3 {
		t.Errorf("a → c: %v", c)
	}
}
