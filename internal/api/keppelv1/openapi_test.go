package keppelv1_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"keppel/internal/test"
)

// openAPIDocFile is docs/openapi.yaml, seen from this package's directory.
const openAPIDocFile = "../../../docs/openapi.yaml"

// openAPIRepositoryRoutes are the endpoints below a repository. handler.go
// registers them as one pattern,
// "/keppel/v1/accounts/{account}/repositories/{rest...}", because repository
// names contain slashes, and repositoryRoute then dispatches them by code.
// The AST cannot show them, so they are listed here: keep this list in step
// with repositoryRoute.
var openAPIRepositoryRoutes = []string{
	"DELETE /keppel/v1/accounts/{account}/repositories/{repository}",
	"GET /keppel/v1/accounts/{account}/repositories/{repository}/_manifests",
	"DELETE /keppel/v1/accounts/{account}/repositories/{repository}/_manifests/{digest}",
	"GET /keppel/v1/accounts/{account}/repositories/{repository}/_manifests/{digest}/vulnerability_report",
	"DELETE /keppel/v1/accounts/{account}/repositories/{repository}/_tags/{tag}",
}

// openAPIRepositorySuffixes are the "/_…" string literals that
// repositoryRoute matches on. A new literal there most likely means a new
// sub-route, which must be added to openAPIRepositoryRoutes and documented.
var openAPIRepositorySuffixes = []string{"/_manifests", "/_manifests/", "/_tags/"}

// openAPIPlaceholders are the values sent for path parameters: the
// account "test" (tenant "tenant1") exists on a test server.
var openAPIPlaceholders = map[string]string{
	"account":    "test",
	"repository": "team/app",
	"digest":     "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	"tag":        "v1",
	"tenant":     "tenant1",
	"user":       "alice",
	"id":         "0123456789ab",
}

var openAPIParamRx = regexp.MustCompile(`\{[^}]*\}`)

// openAPIRoute normalizes "METHOD /path/{name}" so that parameter names do
// not matter: "METHOD /path/{}".
func openAPIRoute(method, path string) string {
	return strings.ToUpper(method) + " " + openAPIParamRx.ReplaceAllString(path, "{}")
}

// openAPIHandlerRoutes returns the routes of the management API as the
// source registers them: the string literals passed to h.mux.HandleFunc
// (or h.mux.Handle) in the package's non-test files, with the pattern of
// repositoryRoute replaced by openAPIRepositoryRoutes and the catch-all
// pattern "/keppel/v1/" left out. Routes are normalized by openAPIRoute
// and mapped to their pattern as written.
func openAPIHandlerRoutes(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]string{}
	sawCatchAll, sawRepositoryRoute, sawHandlerGo, sawDispatcher := false, false, false, false
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if fd, ok := n.(*ast.FuncDecl); ok && fd.Name.Name == "repositoryRoute" && fd.Recv != nil {
				sawDispatcher = true
				openAPICheckRepositorySuffixes(t, fset, fd)
				return true
			}
			call, ok := n.(*ast.CallExpr)
			if !ok || !openAPIIsMuxRegistration(call) {
				return true
			}
			pos := fset.Position(call.Pos())
			if len(call.Args) != 2 {
				t.Errorf("%s: mux registration with %d arguments", pos, len(call.Args))
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: the pattern is not a string literal, so this test cannot check that it is documented", pos)
				return true
			}
			pattern, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatalf("%s: %v", pos, err)
			}
			if file == "handler.go" {
				sawHandlerGo = true
			}
			method, path, hasMethod := strings.Cut(pattern, " ")
			switch {
			case pattern == "/keppel/v1/":
				sawCatchAll = true
			case openAPIIsMethod(call.Args[1], "repositoryRoute"):
				sawRepositoryRoute = true
				if pattern != "/keppel/v1/accounts/{account}/repositories/{rest...}" {
					t.Errorf("%s: repositoryRoute is registered for %q; update openAPIRepositoryRoutes", pos, pattern)
				}
				for _, r := range openAPIRepositoryRoutes {
					m, p, _ := strings.Cut(r, " ")
					routes[openAPIRoute(m, p)] = r + " (dispatched by repositoryRoute)"
				}
			case !hasMethod:
				t.Errorf("%s: pattern %q has no method: give it one (and document it), or teach this test about it", pos, pattern)
			default:
				key := openAPIRoute(method, path)
				if _, dup := routes[key]; dup {
					t.Errorf("%s: route %q is registered twice", pos, pattern)
				}
				routes[key] = pattern
			}
			return true
		})
	}
	if !sawHandlerGo || !sawCatchAll || !sawRepositoryRoute || !sawDispatcher {
		t.Fatalf("the route registrations were not found (handler.go: %v, catch-all: %v, repositoryRoute registered: %v, defined: %v); has handler.go changed shape?",
			sawHandlerGo, sawCatchAll, sawRepositoryRoute, sawDispatcher)
	}
	return routes
}

// openAPIIsMuxRegistration reports whether call is h.mux.HandleFunc(…) or
// h.mux.Handle(…).
func openAPIIsMuxRegistration(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
		return false
	}
	inner, ok := sel.X.(*ast.SelectorExpr)
	return ok && inner.Sel.Name == "mux"
}

// openAPIIsMethod reports whether expr is h.<name>.
func openAPIIsMethod(expr ast.Expr, name string) bool {
	sel, ok := expr.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == name
}

// openAPICheckRepositorySuffixes compares the "/_…" literals of
// repositoryRoute with openAPIRepositorySuffixes.
func openAPICheckRepositorySuffixes(t *testing.T, fset *token.FileSet, fd *ast.FuncDecl) {
	t.Helper()
	var got []string
	ast.Inspect(fd, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err == nil && strings.HasPrefix(s, "/_") && s != "/_" && !slices.Contains(got, s) {
			got = append(got, s)
		}
		return true
	})
	want := slices.Clone(openAPIRepositorySuffixes)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: repositoryRoute matches on %q, this test knows %q: update openAPIRepositoryRoutes and docs/openapi.yaml",
			fset.Position(fd.Pos()), got, want)
	}
}

type openAPIParameter struct {
	Ref  string `yaml:"$ref"`
	Name string `yaml:"name"`
	In   string `yaml:"in"`
}

type openAPIOperation struct {
	Parameters []openAPIParameter `yaml:"parameters"`
	Responses  map[string]any     `yaml:"responses"`
}

type openAPIDocument struct {
	OpenAPI    string                    `yaml:"openapi"`
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		Parameters map[string]openAPIParameter `yaml:"parameters"`
	} `yaml:"components"`
}

// openAPIOp is one documented operation.
type openAPIOp struct {
	method, path string
	// statuses are the documented response codes ("200", "default", …).
	statuses []string
}

var openAPIMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

// openAPIOperations reads docs/openapi.yaml and returns its operations,
// checking that each declares its path parameters and some responses.
func openAPIOperations(t *testing.T) []openAPIOp {
	t.Helper()
	raw, err := os.ReadFile(openAPIDocFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDocument
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", openAPIDocFile, err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Errorf("openapi = %q, want 3.0.x", doc.OpenAPI)
	}
	resolve := func(p openAPIParameter) openAPIParameter {
		if p.Ref == "" {
			return p
		}
		name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
		q, found := doc.Components.Parameters[name]
		if !ok || !found {
			t.Errorf("unresolvable parameter reference %q", p.Ref)
		}
		return q
	}
	pathParams := func(list []openAPIParameter) []string {
		var out []string
		for _, p := range list {
			if p = resolve(p); p.In == "path" {
				out = append(out, p.Name)
			}
		}
		return out
	}

	var ops []openAPIOp
	for path, item := range doc.Paths {
		var common []string
		if node, ok := item["parameters"]; ok {
			var list []openAPIParameter
			if err := openAPIRedecode(node, &list); err != nil {
				t.Fatalf("%s parameters: %v", path, err)
			}
			common = pathParams(list)
		}
		for key, node := range item {
			if key == "parameters" || key == "summary" || key == "description" || key == "servers" {
				continue
			}
			if !slices.Contains(openAPIMethods, key) {
				t.Errorf("%s: unknown key %q", path, key)
				continue
			}
			var op openAPIOperation
			if err := openAPIRedecode(node, &op); err != nil {
				t.Fatalf("%s %s: %v", key, path, err)
			}
			declared := append(slices.Clone(common), pathParams(op.Parameters)...)
			var inPath []string
			for _, m := range openAPIParamRx.FindAllString(path, -1) {
				inPath = append(inPath, strings.Trim(m, "{}"))
			}
			slices.Sort(declared)
			slices.Sort(inPath)
			if !slices.Equal(declared, inPath) {
				t.Errorf("%s %s: path parameters %q, declared %q", strings.ToUpper(key), path, inPath, declared)
			}
			if len(op.Responses) == 0 {
				t.Errorf("%s %s: no responses", strings.ToUpper(key), path)
			}
			o := openAPIOp{method: strings.ToUpper(key), path: path}
			for status := range op.Responses {
				o.statuses = append(o.statuses, status)
			}
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		// Deletions last, deepest paths first, so that they cannot change
		// what the other requests of TestOpenAPIRoutesAreServed find.
		if di, dj := ops[i].method == http.MethodDelete, ops[j].method == http.MethodDelete; di != dj {
			return dj
		} else if di && len(ops[i].path) != len(ops[j].path) {
			return len(ops[i].path) > len(ops[j].path)
		}
		return ops[i].path+" "+ops[i].method < ops[j].path+" "+ops[j].method
	})
	return ops
}

// openAPIRedecode decodes a generically decoded YAML value into v.
func openAPIRedecode(value, v any) error {
	raw, err := yaml.Marshal(value)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(raw, v)
}

// TestOpenAPIDocumentsAllRoutes compares the routes of the source with the
// operations of docs/openapi.yaml, in both directions.
func TestOpenAPIDocumentsAllRoutes(t *testing.T) {
	t.Parallel()
	routes := openAPIHandlerRoutes(t)
	documented := map[string]bool{}
	for _, op := range openAPIOperations(t) {
		key := openAPIRoute(op.method, op.path)
		documented[key] = true
		if _, ok := routes[key]; !ok {
			t.Errorf("docs/openapi.yaml documents %s %s, which handler.go does not register", op.method, op.path)
		}
	}
	for key, pattern := range routes {
		if !documented[key] {
			t.Errorf("route %q is not documented in docs/openapi.yaml (and docs/api.md)", pattern)
		}
	}
}

// TestOpenAPIRoutesAreServed sends every documented operation to a test
// server, as a server admin and with placeholder values, and checks that it
// reaches an endpoint (not the catch-all "no such endpoint" answer) and that
// the status it gets is one the document lists.
func TestOpenAPIRoutesAreServed(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	admin := s.Token(t)

	catchAll := func(r test.Response) (string, bool) {
		var env struct {
			Errors []struct {
				Message string `json:"message"`
			} `json:"errors"`
		}
		if r.Status != http.StatusNotFound || json.Unmarshal(r.Body, &env) != nil || len(env.Errors) == 0 {
			return "", false
		}
		msg := env.Errors[0].Message
		return msg, strings.HasPrefix(msg, "no such endpoint")
	}

	// The check can fail: a method that is not an endpoint gets the catch-all.
	if r := s.Do(t, http.MethodPatch, "/keppel/v1/accounts/test", admin, nil, nil); r.Status != http.StatusNotFound {
		t.Fatalf("PATCH /keppel/v1/accounts/test: %d %s, want the catch-all 404", r.Status, r.Body)
	} else if _, ok := catchAll(r); !ok {
		t.Fatalf("PATCH /keppel/v1/accounts/test: %s is not the catch-all answer", r.Body)
	}

	ops := openAPIOperations(t)
	if len(ops) == 0 {
		t.Fatal("docs/openapi.yaml has no operations")
	}
	for _, op := range ops {
		path := openAPIParamRx.ReplaceAllStringFunc(op.path, func(m string) string {
			name := strings.Trim(m, "{}")
			v, ok := openAPIPlaceholders[name]
			if !ok {
				t.Fatalf("%s %s: no placeholder for path parameter %q; add one to openAPIPlaceholders", op.method, op.path, name)
			}
			return v
		})
		r := s.Do(t, op.method, path, admin, nil, nil)
		if msg, ok := catchAll(r); ok {
			t.Errorf("%s %s (%s %s) is not served: %s", op.method, op.path, op.method, path, msg)
			continue
		}
		status := strconv.Itoa(r.Status)
		if !slices.Contains(op.statuses, status) && !slices.Contains(op.statuses, "default") {
			t.Errorf("%s %s: answered %d (%s), which docs/openapi.yaml does not list (%v)",
				op.method, path, r.Status, strings.TrimSpace(string(r.Body)), op.statuses)
		}
	}
}
