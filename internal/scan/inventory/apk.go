package inventory

import "strings"

// isAPKDatabase reports whether p is the database of installed Alpine
// packages (under /usr/lib in images with a merged /usr).
func isAPKDatabase(p string) bool {
	return p == "lib/apk/db/installed" || p == "usr/lib/apk/db/installed"
}

// parseAPKDatabase returns the packages of an apk database: blocks of
// "X:value" lines separated by blank lines, with the package name in P:,
// its version in V: and its origin (source package) in o:. Blocks without
// name or version are skipped.
func parseAPKDatabase(content []byte, location string) []Package {
	var pkgs []Package
	var cur Package
	flush := func() {
		if cur.Name != "" && cur.Version != "" {
			if cur.Source == "" {
				cur.Source = cur.Name
			}
			cur.Type, cur.Location = TypeAPK, location
			pkgs = append(pkgs, cur)
		}
		cur = Package{}
	}
	for line := range strings.Lines(string(content)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch key {
		case "P":
			cur.Name = strings.TrimSpace(value)
		case "V":
			cur.Version = strings.TrimSpace(value)
		case "o":
			cur.Source = strings.TrimSpace(value)
		}
	}
	flush()
	return pkgs
}
