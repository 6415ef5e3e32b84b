package builtin

import (
	"strings"
	"time"

	"keppel/internal/scan/inventory"
)

// endOfLifeDates are the end of the security support of distribution
// releases (as the distributions announced them): an image of a release
// past that date is Rotten, since advisories no longer cover it.
var endOfLifeDates = map[string]map[string]string{
	"alpine": {
		"3.10": "2021-05-01", "3.11": "2021-11-01", "3.12": "2022-05-01", "3.13": "2022-11-01",
		"3.14": "2023-05-01", "3.15": "2023-11-01", "3.16": "2024-05-23", "3.17": "2024-11-22",
		"3.18": "2025-05-09", "3.19": "2025-11-01", "3.20": "2026-04-01", "3.21": "2026-11-01",
	},
	"debian": {
		"8": "2020-06-30", "9": "2022-06-30", "10": "2024-06-30",
	},
}

// endOfLife reports whether the image's distribution release is past the
// end of its security support at now. Releases missing from the table
// (newer ones, other distributions) are not.
func endOfLife(os inventory.OS, now time.Time) bool {
	releases, ok := endOfLifeDates[os.ID]
	if !ok {
		return false
	}
	release := os.VersionID
	switch os.ID {
	case "alpine":
		parts := strings.SplitN(release, ".", 3)
		if len(parts) < 2 {
			return false
		}
		release = parts[0] + "." + parts[1]
	case "debian":
		release, _, _ = strings.Cut(release, ".")
	}
	date, ok := releases[release]
	if !ok {
		return false
	}
	eol, err := time.Parse(time.DateOnly, date)
	return err == nil && !now.Before(eol)
}
