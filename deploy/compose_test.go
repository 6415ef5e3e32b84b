package deploy

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// composeDefault expands ${NAME:-default} the way compose does when NAME
// is not set.
var composeDefault = regexp.MustCompile(`\$\{[A-Z0-9_]+:-([^}]*)\}`)

func expandDefaults(s string) string { return composeDefault.ReplaceAllString(s, "$1") }

// isKeppel reports whether a compose service runs the keppel image.
func (s composeService) isKeppel() bool {
	return s.Build != nil || strings.HasPrefix(s.Image, "keppel:") || s.Image == "keppel"
}

// dockerfile is what the tests need of the Dockerfile.
type dockerfile struct {
	args       map[string]string
	env        map[string]string
	entrypoint string
	cmd        string
	expose     []string
	volume     string
	froms      []string
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	d := dockerfile{args: map[string]string{}, env: map[string]string{}}
	// join continuation lines
	text := strings.ReplaceAll(string(readFile(t, "Dockerfile")), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			d.args[k] = v
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				d.env[k] = v
			}
		case "ENTRYPOINT":
			d.entrypoint = rest
		case "CMD":
			d.cmd = rest
		case "EXPOSE":
			d.expose = append(d.expose, strings.Fields(rest)...)
		case "VOLUME":
			d.volume = rest
		case "FROM":
			d.froms = append(d.froms, rest)
		}
	}
	return d
}

// jsonArray parses an exec-form instruction such as ["server", "api"].
func jsonArray(t *testing.T, where, s string) []string {
	t.Helper()
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		t.Fatalf("%s is not in exec form: %s", where, s)
	}
	var out []string
	for _, part := range strings.Split(strings.Trim(s, "[]"), ",") {
		out = append(out, strings.Trim(strings.TrimSpace(part), `"`))
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	d := parseDockerfile(t)

	mod, err := modfile.ParseLax("go.mod", readFile(t, "go.mod"), nil)
	if err != nil || mod.Go == nil {
		t.Fatalf("go.mod: %v", err)
	}
	if got := d.args["GO_VERSION"]; got != mod.Go.Version {
		t.Errorf("Dockerfile builds with Go %q, go.mod asks for %q", got, mod.Go.Version)
	}
	if len(d.froms) < 2 || !strings.Contains(d.froms[0], "golang:${GO_VERSION}") {
		t.Errorf("Dockerfile is not a multi-stage build from golang:${GO_VERSION}: FROM %q", d.froms)
	}
	if ep := jsonArray(t, "ENTRYPOINT", d.entrypoint); !slices.Equal(ep, []string{"keppel"}) {
		t.Errorf("ENTRYPOINT is %q, want [keppel] (compose.yaml and deploy/kubernetes pass only arguments)", ep)
	}
	checkCommand(t, "Dockerfile CMD", jsonArray(t, "CMD", d.cmd))
	for name := range d.env {
		checkVariable(t, "Dockerfile", name)
	}
	port := portOf(t, "Dockerfile ENV KEPPEL_API_LISTEN_ADDRESS", d.env["KEPPEL_API_LISTEN_ADDRESS"])
	if !slices.Contains(d.expose, port) {
		t.Errorf("Dockerfile EXPOSEs %q, but the API listens on port %s", d.expose, port)
	}
	if vol := jsonArray(t, "VOLUME", d.volume); !slices.Contains(vol, d.env["KEPPEL_DATA_DIR"]) {
		t.Errorf("Dockerfile VOLUME %q is not KEPPEL_DATA_DIR %q", vol, d.env["KEPPEL_DATA_DIR"])
	}
	cfg := loadConfig(t, "Dockerfile ENV", "", d.env)
	if cfg.UsesPostgres() || !*cfg.Janitor.Embedded {
		t.Error("the image's default command should be the embedded registry")
	}
}

func TestCompose(t *testing.T) {
	t.Parallel()
	docs := yamlDocuments[composeFile](t, "compose.yaml")
	if len(docs) != 1 {
		t.Fatalf("compose.yaml has %d documents", len(docs))
	}
	c := docs[0]
	guide := string(readFile(t, "docs/operator-guide.md"))
	if !strings.Contains(guide, "compose.yaml") {
		t.Error("docs/operator-guide.md does not describe compose.yaml")
	}

	roles := map[string]string{}
	for name, svc := range c.Services {
		if !svc.isKeppel() {
			continue
		}
		where := "compose.yaml service " + name
		checkCommand(t, where, svc.Command)
		if !strings.Contains(guide, "keppel "+strings.Join(svc.Command, " ")) {
			t.Errorf("%s runs `keppel %s`, which docs/operator-guide.md does not describe", where, strings.Join(svc.Command, " "))
		}
		env := map[string]string{}
		for k, v := range svc.Environment {
			checkVariable(t, where, k)
			env[k] = expandDefaults(v)
		}
		cfg := loadConfig(t, where, "", env)
		roles[strings.Join(svc.Command, " ")] = name

		if !slices.ContainsFunc(svc.Volumes, func(v string) bool { return strings.HasSuffix(v, ":"+cfg.DataDir) }) {
			t.Errorf("%s keeps its data directory %s on no volume", where, cfg.DataDir)
		}
		var healthPort string
		switch strings.Join(svc.Command, " ") {
		case "server", "server api":
			healthPort = portOf(t, where, cfg.API.ListenAddress)
			if !slices.ContainsFunc(svc.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+healthPort) }) {
				t.Errorf("%s publishes %q, but the API listens on port %s", where, svc.Ports, healthPort)
			}
		case "server janitor":
			if cfg.Janitor.ListenAddress == "" {
				t.Errorf("%s has no KEPPEL_JANITOR_LISTEN_ADDRESS, so it cannot be health-checked", where)
				continue
			}
			healthPort = portOf(t, where, cfg.Janitor.ListenAddress)
		}
		checkComposeHealthcheck(t, where, svc, healthPort)
		checkComposePostgres(t, where, c, cfg, env)
	}
	if roles["server api"] == "" || roles["server janitor"] == "" {
		t.Errorf("compose.yaml should run `keppel server api` and `keppel server janitor` (runs: %v)", roles)
	}
	for name, svc := range c.Services {
		for _, v := range svc.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if _, ok := c.Volumes[src]; !ok && !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				t.Errorf("compose.yaml service %s mounts the undeclared volume %s", name, src)
			}
		}
	}
}

// checkComposeHealthcheck checks that a keppel service's health check asks
// /healthcheck on the port that the process serves it on.
func checkComposeHealthcheck(t *testing.T, where string, svc composeService, port string) {
	t.Helper()
	if svc.Healthcheck == nil || len(svc.Healthcheck.Test) < 2 || svc.Healthcheck.Test[0] != "CMD" || svc.Healthcheck.Test[1] != "keppel" {
		t.Errorf("%s has no health check of the form [CMD, keppel, …]", where)
		return
	}
	args := svc.Healthcheck.Test[2:]
	checkCommand(t, where+" health check", args)
	i := slices.Index(args, "--url")
	if i < 0 || i+1 >= len(args) {
		t.Errorf("%s health check has no --url", where)
		return
	}
	u, err := url.Parse(args[i+1])
	if err != nil || u.Path != "/healthcheck" || u.Port() != port {
		t.Errorf("%s health check asks %q, but the process serves /healthcheck on port %s", where, args[i+1], port)
	}
}

// checkComposePostgres checks that keppel's database settings name the
// compose PostgreSQL service, its user, password and database.
func checkComposePostgres(t *testing.T, where string, c composeFile, cfg keppelConfig, env map[string]string) {
	t.Helper()
	if !cfg.UsesPostgres() {
		t.Errorf("%s does not use PostgreSQL", where)
		return
	}
	u, err := url.Parse(cfg.Database.URL)
	if err != nil {
		t.Fatalf("%s: database URL: %v", where, err)
	}
	pg, ok := c.Services[u.Hostname()]
	if !ok || !strings.HasPrefix(pg.Image, "postgres:") {
		t.Errorf("%s connects to the database host %q, which is no postgres service of compose.yaml", where, u.Hostname())
		return
	}
	if u.Port() != "" && u.Port() != "5432" {
		t.Errorf("%s connects to port %s of %s, PostgreSQL listens on 5432", where, u.Port(), u.Hostname())
	}
	pgEnv := map[string]string{}
	for k, v := range pg.Environment {
		pgEnv[k] = expandDefaults(v)
	}
	password, _ := u.User.Password()
	if password == "" {
		password = env["KEPPEL_DB_PASSWORD"]
	}
	for _, check := range []struct{ what, keppel, postgres string }{
		{"user", u.User.Username(), pgEnv["POSTGRES_USER"]},
		{"password", password, pgEnv["POSTGRES_PASSWORD"]},
		{"database", strings.TrimPrefix(u.Path, "/"), pgEnv["POSTGRES_DB"]},
	} {
		if check.keppel != check.postgres {
			t.Errorf("%s connects with the database %s %q, the postgres service sets up %q", where, check.what, check.keppel, check.postgres)
		}
	}
	if pg.Healthcheck == nil {
		t.Errorf("compose.yaml service %s has no health check", u.Hostname())
	}
}
