package inventory

import (
	"path"
	"strings"
)

// dpkgStatusD is the directory in which distroless images keep one status
// file per package.
const dpkgStatusD = "var/lib/dpkg/status.d"

// isDpkgStatus reports whether p is dpkg's database of packages.
func isDpkgStatus(p string) bool {
	return p == "var/lib/dpkg/status"
}

// isDpkgStatusD reports whether p is a package's status file of a
// distroless image (and not the list of checksums next to it).
func isDpkgStatusD(p string) bool {
	return path.Dir(p) == dpkgStatusD && !strings.HasSuffix(p, ".md5sums")
}

// parseDpkgStatus returns the installed packages of a dpkg status file:
// paragraphs of "Field: value" lines separated by blank lines, where lines
// that start with white space continue the previous field. A paragraph
// counts if its Status says that the package is installed; one without
// Status counts only if needStatus is false (the files of status.d have
// none). Field names are case-insensitive.
func parseDpkgStatus(content []byte, location string, needStatus bool) []Package {
	var pkgs []Package
	var cur Package
	var status string
	var hasStatus bool
	flush := func() {
		installed := !needStatus && !hasStatus || hasStatus && dpkgInstalled(status)
		if cur.Name != "" && cur.Version != "" && installed {
			if cur.Source == "" {
				cur.Source = cur.Name
			}
			cur.Type, cur.Location = TypeDpkg, location
			pkgs = append(pkgs, cur)
		}
		cur, status, hasStatus = Package{}, "", false
	}
	for line := range strings.Lines(string(content)) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.TrimSpace(line) == "":
			flush()
			continue
		case line[0] == ' ' || line[0] == '\t':
			continue // continuation of a field that is not needed
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(key) {
		case "package":
			cur.Name = value
		case "version":
			cur.Version = value
		case "source":
			// "openssl (1.1.1c-1)" when the source version differs.
			cur.Source, _, _ = strings.Cut(value, " ")
		case "status":
			status, hasStatus = value, true
		}
	}
	flush()
	return pkgs
}

// dpkgInstalled reports whether a Status value ("install ok installed")
// says that the package is installed.
func dpkgInstalled(status string) bool {
	fields := strings.Fields(status)
	return len(fields) == 3 && fields[2] == "installed"
}
