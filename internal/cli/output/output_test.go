package output

import (
	"bytes"
	"io"
	"testing"
)

type item struct {
	Name  string `json:"name"`
	Size  int64  `json:"size_bytes"`
	Empty string `json:"empty,omitempty"`
}

func TestWrite(t *testing.T) {
	t.Parallel()
	items := []item{{"alpha", 12, ""}, {"a-much-longer-name", 3456, ""}}
	table := func(w io.Writer) error {
		Row(w, "NAME", "SIZE")
		for _, i := range items {
			Row(w, i.Name, "x")
		}
		return nil
	}
	for _, c := range []struct {
		format Format
		want   string
	}{
		{Table, "NAME                SIZE\nalpha               x\na-much-longer-name  x\n"},
		{JSON, "[\n  {\n    \"name\": \"alpha\",\n    \"size_bytes\": 12\n  },\n  {\n    \"name\": \"a-much-longer-name\",\n    \"size_bytes\": 3456\n  }\n]\n"},
		{YAML, "- name: alpha\n  size_bytes: 12\n- name: a-much-longer-name\n  size_bytes: 3456\n"},
	} {
		var buf bytes.Buffer
		if err := Write(&buf, c.format, items, table); err != nil {
			t.Fatal(err)
		}
		if buf.String() != c.want {
			t.Errorf("%s:\n%s\nwant:\n%s", c.format, buf.String(), c.want)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Format{"table": Table, "JSON": JSON, "yaml": YAML, "": Table} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := Parse("xml"); err == nil || !bytes.Contains([]byte(err.Error()), []byte("table, json, yaml")) {
		t.Errorf("Parse(xml) = %v", err)
	}
}
