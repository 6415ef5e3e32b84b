package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas int       `yaml:"replicas"`
		Selector yaml.Node `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		// Ports of a Service.
		Ports []struct {
			Name       string    `yaml:"name"`
			TargetPort yaml.Node `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type podSpec struct {
	SecurityContext struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
			Items      []struct {
				Key string `yaml:"key"`
			} `yaml:"items"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
	} `yaml:"resources"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

// resolvePort turns a port given by number or by name into a number.
func (c container) resolvePort(n yaml.Node) string {
	for _, p := range c.Ports {
		if p.Name == n.Value {
			return strconv.Itoa(p.ContainerPort)
		}
	}
	return n.Value
}

// k8sManifests reads every manifest of deploy/kubernetes, by file name.
func k8sManifests(t *testing.T) map[string][]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy/kubernetes/*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes: %v", err)
	}
	out := map[string][]k8sObject{}
	for _, f := range files {
		name := filepath.Base(f)
		if name == "kustomization.yaml" {
			continue
		}
		out[name] = yamlDocuments[k8sObject](t, "deploy/kubernetes/"+name)
	}
	return out
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	t.Parallel()
	type kustomization struct {
		Resources []string `yaml:"resources"`
	}
	k := yamlDocuments[kustomization](t, "deploy/kubernetes/kustomization.yaml")[0]
	manifests := k8sManifests(t)
	for name := range manifests {
		if !slices.Contains(k.Resources, name) {
			t.Errorf("deploy/kubernetes/kustomization.yaml does not list %s", name)
		}
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(repoRoot, "deploy/kubernetes", r)); err != nil {
			t.Errorf("deploy/kubernetes/kustomization.yaml lists %s: %v", r, err)
		}
	}
}

func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	objects := map[string]k8sObject{} // by kind/name
	for file, docs := range k8sManifests(t) {
		for _, o := range docs {
			if o.Kind == "" || o.Metadata.Name == "" || o.APIVersion == "" {
				t.Errorf("deploy/kubernetes/%s has an object without apiVersion, kind or name", file)
			}
			objects[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	guide := string(readFile(t, "docs/operator-guide.md"))
	if !strings.Contains(guide, "deploy/kubernetes") {
		t.Error("docs/operator-guide.md does not describe deploy/kubernetes")
	}

	roles := map[string]bool{}
	for key, o := range objects {
		if o.Kind != "Deployment" {
			continue
		}
		for _, c := range o.Spec.Template.Spec.Containers {
			if !strings.Contains(c.Image, "keppel") || strings.Contains(c.Image, "redis") {
				continue
			}
			where := "deploy/kubernetes " + key
			role := strings.Join(c.Args, " ")
			roles[role] = true
			checkKeppelContainer(t, where, objects, o, c)
			if !strings.Contains(guide, "keppel "+role) {
				t.Errorf("%s runs `keppel %s`, which docs/operator-guide.md does not describe", where, role)
			}
			if role == "server api" && o.Spec.Replicas < 2 {
				t.Errorf("%s runs %d API replicas, want several", where, o.Spec.Replicas)
			}
			checkPDB(t, where, objects, o)
		}
	}
	if !roles["server api"] || !roles["server janitor"] {
		t.Errorf("deploy/kubernetes should run `keppel server api` and `keppel server janitor` (runs: %v)", roles)
	}
}

// checkKeppelContainer checks a container that runs keppel against the
// configuration it gets, the commands of the binary and the other objects.
func checkKeppelContainer(t *testing.T, where string, objects map[string]k8sObject, d k8sObject, c container) {
	t.Helper()
	if len(c.Command) != 0 && !slices.Equal(c.Command, []string{"keppel"}) {
		t.Errorf("%s overrides the image's ENTRYPOINT with %q", where, c.Command)
	}
	checkCommand(t, where, c.Args)
	if !d.Spec.Template.Spec.SecurityContext.RunAsNonRoot || !c.SecurityContext.ReadOnlyRootFilesystem ||
		c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("%s must run as non-root, with a read-only root filesystem and without privilege escalation", where)
	}
	if len(c.Resources.Requests) == 0 {
		t.Errorf("%s requests no resources", where)
	}

	// The environment, with placeholders for secrets.
	env := map[string]string{}
	for _, e := range c.Env {
		checkVariable(t, where, e.Name)
		env[e.Name] = e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			secret, ok := objects["Secret/"+ref.Name]
			if _, has := secret.StringData[ref.Key]; !ok || !has {
				t.Errorf("%s takes %s from the key %s of the Secret %s, which deploy/kubernetes does not have", where, e.Name, ref.Key, ref.Name)
			}
			env[e.Name] = "placeholder"
		}
	}

	// The configuration file, from a ConfigMap.
	yamlText := ""
	if path := env["KEPPEL_CONFIG_FILE"]; path != "" {
		yamlText = mountedConfig(t, where, objects, d, c, path)
	}
	cfg := loadConfig(t, where, yamlText, env)
	for _, file := range []string{cfg.Auth.IssuerKeyFile, cfg.Auth.SecretsKeyFile} {
		if !mountedFromSecret(objects, d, c, file) {
			t.Errorf("%s reads %s, which is not mounted from a Secret (every process needs the same key)", where, file)
		}
	}
	if !cfg.UsesPostgres() || cfg.Storage.Driver == "filesystem" || cfg.Storage.Driver == "memory" || cfg.RateLimits.RedisURL == "" {
		t.Errorf("%s is not the distributed deployment (PostgreSQL, S3 or Swift, Redis)", where)
	}
	if strings.Contains(cfg.RateLimits.RedisURL, "keppel-redis") && objects["Service/keppel-redis"].Kind == "" {
		t.Errorf("%s uses Redis at %s, but there is no Service keppel-redis", where, cfg.RateLimits.RedisURL)
	}

	// Probes ask /healthcheck where the process serves it.
	var port string
	switch strings.Join(c.Args, " ") {
	case "server api", "server":
		port = portOf(t, where, cfg.API.ListenAddress)
		checkServiceTargets(t, where, objects, d, c, port)
	case "server janitor":
		if cfg.Janitor.ListenAddress == "" {
			t.Errorf("%s sets no janitor.listen_address, so it cannot be probed", where)
			return
		}
		port = portOf(t, where, cfg.Janitor.ListenAddress)
	}
	for name, p := range map[string]*probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s has no HTTP %s probe", where, name)
			continue
		}
		if got := c.resolvePort(p.HTTPGet.Port); p.HTTPGet.Path != "/healthcheck" || got != port {
			t.Errorf("%s %s probe asks %s on port %s, but the process serves /healthcheck on port %s", where, name, p.HTTPGet.Path, got, port)
		}
	}
	if a := d.Spec.Template.Metadata.Annotations; a["prometheus.io/scrape"] == "true" && (a["prometheus.io/port"] != port || a["prometheus.io/path"] != "/metrics") {
		t.Errorf("%s is scraped at %s on port %s, but serves /metrics on port %s", where, a["prometheus.io/path"], a["prometheus.io/port"], port)
	}
}

// mountedConfig returns the configuration file at path, from the ConfigMap
// volume that is mounted there.
func mountedConfig(t *testing.T, where string, objects map[string]k8sObject, d k8sObject, c container, path string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		file := m.MountPath
		if m.SubPath == "" {
			file = filepath.Join(m.MountPath, filepath.Base(path))
		}
		if file != path {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				cm, ok := objects["ConfigMap/"+v.ConfigMap.Name]
				text, has := cm.Data[filepath.Base(path)]
				if !ok || !has {
					t.Fatalf("%s mounts %s from the ConfigMap %s, which has no such key", where, path, v.ConfigMap.Name)
				}
				return text
			}
		}
	}
	t.Fatalf("%s reads the configuration %s, which no ConfigMap volume provides", where, path)
	return ""
}

// mountedFromSecret reports whether file is a key of a Secret volume
// mounted in its directory.
func mountedFromSecret(objects map[string]k8sObject, d k8sObject, c container, file string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath != filepath.Dir(file) {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			secret := objects["Secret/"+v.Secret.SecretName]
			_, has := secret.StringData[filepath.Base(file)]
			listed := len(v.Secret.Items) == 0 || slices.ContainsFunc(v.Secret.Items, func(i struct {
				Key string `yaml:"key"`
			}) bool {
				return i.Key == filepath.Base(file)
			})
			return has && listed
		}
	}
	return false
}

// checkServiceTargets checks that a Service selects the API pods and sends
// traffic to the port that the API listens on.
func checkServiceTargets(t *testing.T, where string, objects map[string]k8sObject, d k8sObject, c container, port string) {
	t.Helper()
	found := false
	for key, o := range objects {
		if o.Kind != "Service" || !selects(o.Spec.Selector, d.Spec.Template.Metadata.Labels) {
			continue
		}
		found = true
		for _, p := range o.Spec.Ports {
			if got := c.resolvePort(p.TargetPort); got != port {
				t.Errorf("%s sends port %s to %s, which listens on %s", key, p.Name, got, port)
			}
		}
	}
	if !found {
		t.Errorf("no Service selects %s", where)
	}
}

// checkPDB checks that a PodDisruptionBudget covers a Deployment.
func checkPDB(t *testing.T, where string, objects map[string]k8sObject, d k8sObject) {
	t.Helper()
	for _, o := range objects {
		if o.Kind == "PodDisruptionBudget" && selects(o.Spec.Selector, d.Spec.Template.Metadata.Labels) {
			return
		}
	}
	t.Errorf("no PodDisruptionBudget covers %s", where)
}

// selects reports whether a selector (a label map, or matchLabels) matches
// the labels.
func selects(sel yaml.Node, labels map[string]string) bool {
	var full struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	var plain map[string]string
	if err := sel.Decode(&full); err == nil && len(full.MatchLabels) > 0 {
		plain = full.MatchLabels
	} else if err := sel.Decode(&plain); err != nil {
		return false
	}
	if len(plain) == 0 {
		return false
	}
	for k, v := range plain {
		if labels[k] != v {
			return false
		}
	}
	return true
}
