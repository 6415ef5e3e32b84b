package janitor

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"keppel/internal/db"
	"keppel/internal/db/sqlite"
	"keppel/internal/registry"
	"keppel/internal/storage/memory"
)

func TestManagedAccounts(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "keppel.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := registry.New(store, memory.New())
	path := filepath.Join(dir, "accounts.yaml")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := &Reconciler{svc: svc, path: path}

	write(`accounts:
  - name: library
    auth_tenant_id: team-a
    protected: true
    rbac_policies:
      - match_repository: ".*"
        permissions: [anonymous_pull]
  - name: scratch
    auth_tenant_id: team-a
    tag_policies:
      - match_repository: ".*"
        match_tag: "v.*"
        block_overwrite: true
    validation:
      rule_for_manifest: "size(layers) <= 10"
`)
	if n, err := r.Reconcile(ctx); err != nil || n != 2 {
		t.Fatalf("first reconcile: %d changes, %v", n, err)
	}
	lib, err := store.GetAccount(ctx, "library")
	if err != nil || !lib.IsManaged || !lib.IsProtected || lib.RBACPoliciesJSON == "" {
		t.Fatalf("library: %+v %v", lib, err)
	}
	if n, err := r.Reconcile(ctx); err != nil || n != 0 {
		t.Fatalf("reconciling an unchanged file: %d changes, %v", n, err)
	}
	// Users cannot change or delete managed accounts.
	lib.RBACPoliciesJSON = ""
	if err := svc.UpdateAccount(ctx, lib, false); !errors.Is(err, registry.ErrManagedAccount) {
		t.Fatalf("user change of a managed account: %v", err)
	}
	if _, err := svc.MarkAccountForDeletion(ctx, "scratch", false); !errors.Is(err, registry.ErrManagedAccount) {
		t.Fatalf("user deletion of a managed account: %v", err)
	}

	// Both disappear from the file: the protected one is released, the
	// other is deleted.
	write("accounts: []\n")
	if n, err := r.Reconcile(ctx); err != nil || n != 2 {
		t.Fatalf("reconcile after removal: %d changes, %v", n, err)
	}
	lib, err = store.GetAccount(ctx, "library")
	if err != nil || lib.IsDeleting || lib.IsManaged {
		t.Fatalf("protected account after removal from the file: %+v %v", lib, err)
	}
	scratch, err := store.GetAccount(ctx, "scratch")
	if err != nil || !scratch.IsDeleting {
		t.Fatalf("unprotected account after removal from the file: %+v %v", scratch, err)
	}

	// Invalid files change nothing and say what is wrong.
	for _, bad := range []string{
		"accounts:\n  - name: Bad\n    auth_tenant_id: x\n",
		"accounts:\n  - name: ok\n",
		"accounts:\n  - name: ok\n    auth_tenant_id: x\n    rbac_policies: [{permissions: [pull]}]\n",
		"accounts:\n  - name: ok\n    auth_tenant_id: x\n    validation: {rule_for_manifest: \"1 + \"}\n",
		"accounts:\n  - name: ok\n    auth_tenant_id: x\n  - name: ok\n    auth_tenant_id: x\n",
		"acounts: []\n",
	} {
		write(bad)
		if _, err := r.Reconcile(ctx); err == nil {
			t.Errorf("accepted %q", bad)
		}
		if _, err := store.GetAccount(ctx, "ok"); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("invalid file %q created an account", bad)
		}
	}
}
