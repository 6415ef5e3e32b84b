// Package output prints the results of client commands in the format the
// user asked for with --output: a table for people, or JSON or YAML for
// scripts. JSON and YAML show the same fields under the same names.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"
)

// Format is one of the output formats.
type Format string

// The output formats.
const (
	Table Format = "table"
	JSON  Format = "json"
	YAML  Format = "yaml"
)

// Formats lists the formats, for help texts and shell completion.
var Formats = []string{string(Table), string(JSON), string(YAML)}

// Parse checks a --output value.
func Parse(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case Table, JSON, YAML:
		return f, nil
	case "wide", "text", "":
		return Table, nil
	}
	return "", fmt.Errorf("unknown output format %q: use one of %s", s, strings.Join(Formats, ", "))
}

// Write prints v as JSON or YAML, or, for the table format, calls table
// with a tab-separated writer that aligns the columns.
func Write(w io.Writer, f Format, v any, table func(tw io.Writer) error) error {
	switch f {
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("printing JSON: %w", err)
		}
		return nil
	case YAML:
		return writeYAML(w, v)
	default:
		tw := NewTable(w)
		if err := table(tw); err != nil {
			return err
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("printing table: %w", err)
		}
		return nil
	}
}

// NewTable returns a writer that aligns tab-separated columns.
func NewTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// Row writes one table row of tab-separated cells.
func Row(w io.Writer, cells ...string) {
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// writeYAML goes through JSON, so that YAML shows the fields under their
// JSON names and omits what JSON omits.
func writeYAML(w io.Writer, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("printing YAML: %w", err)
	}
	var generic any
	if err := yaml.Unmarshal(buf, &generic); err != nil {
		return fmt.Errorf("printing YAML: %w", err)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return fmt.Errorf("printing YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("printing YAML: %w", err)
	}
	return nil
}
