package inventory

import "strings"

// osReleasePaths are the places of os-release, in the order in which they
// are looked at.
var osReleasePaths = []string{"etc/os-release", "usr/lib/os-release"}

// isOSRelease reports whether p is one of osReleasePaths.
func isOSRelease(p string) bool {
	return p == osReleasePaths[0] || p == osReleasePaths[1]
}

// parseOSRelease reads ID, VERSION_ID and PRETTY_NAME from an os-release
// file: lines of KEY=value with shell-style quoting; comments and other
// lines are ignored.
func parseOSRelease(content []byte) OS {
	var rel OS
	for line := range strings.Lines(string(content)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "ID":
			rel.ID = unquoteOSRelease(value)
		case "VERSION_ID":
			rel.VersionID = unquoteOSRelease(value)
		case "PRETTY_NAME":
			rel.PrettyName = unquoteOSRelease(value)
		}
	}
	return rel
}

// unquoteOSRelease removes the quotes of a value: in double quotes a
// backslash escapes the next character, in single quotes nothing is
// special. A value without quotes is taken as it is.
func unquoteOSRelease(v string) string {
	v = strings.TrimSpace(v)
	if len(v) < 2 || v[0] != v[len(v)-1] {
		return v
	}
	switch v[0] {
	case '\'':
		return v[1 : len(v)-1]
	case '"':
		var b strings.Builder
		inner := v[1 : len(v)-1]
		for i := 0; i < len(inner); i++ {
			if inner[i] == '\\' && i+1 < len(inner) {
				i++
			}
			b.WriteByte(inner[i])
		}
		return b.String()
	}
	return v
}
