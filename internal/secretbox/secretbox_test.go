package secretbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	key, err := LoadOrCreateKey(path, true)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateKey(path, true)
	if err != nil || string(again) != string(key) {
		t.Fatalf("reloading the key: %v", err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", info.Mode())
	}
	box, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	a, b := box.Seal("hunter2"), box.Seal("hunter2")
	if a == b || strings.Contains(a, "hunter2") {
		t.Fatalf("sealing is not randomized or leaks: %s %s", a, b)
	}
	if plain, err := box.Open(a); err != nil || plain != "hunter2" {
		t.Fatalf("open: %q %v", plain, err)
	}
	other, _ := New(make([]byte, KeySize))
	if _, err := other.Open(a); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("another key opened it: %v", err)
	}
	for _, bad := range []string{"", "hunter2", "kpl1:", "kpl1:!!!", a[:len(a)-2]} {
		if _, err := box.Open(bad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("Open(%q): %v", bad, err)
		}
	}
	if _, err := New([]byte("short")); err == nil {
		t.Error("short key accepted")
	}
	if _, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "missing"), false); err == nil {
		t.Error("missing key file accepted without create")
	}
	garbage := filepath.Join(t.TempDir(), "garbage")
	_ = os.WriteFile(garbage, []byte("not base64 key material"), 0o600)
	if _, err := LoadOrCreateKey(garbage, true); err == nil {
		t.Error("garbage key file accepted")
	}
}
