package bench

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
)

const blobSize = 16 << 20

func BenchmarkBlobPush(b *testing.B) {
	for _, t := range getTargets(b) {
		b.Run(t.name, func(b *testing.B) {
			content := randomBytes(b, blobSize)
			b.SetBytes(blobSize)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// vary the first bytes so that every push stores new content
				copy(content, strconv.Itoa(i)+"-"+b.Name())
				t.pushBlob(b, content)
			}
		})
	}
}

func BenchmarkBlobPull(b *testing.B) {
	for _, t := range getTargets(b) {
		b.Run(t.name, func(b *testing.B) {
			d := t.pushBlob(b, randomBytes(b, blobSize))
			b.SetBytes(blobSize)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp := t.do(b, "GET", "/v2/bench/repo/blobs/"+d.String(), nil, nil)
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("pull: %d", resp.StatusCode)
				}
			}
		})
	}
}

func BenchmarkManifestGet(b *testing.B) {
	for _, t := range getTargets(b) {
		b.Run(t.name, func(b *testing.B) {
			t.pushManifest(b, "get", t.image(b, "get"))
			accept := http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp := t.do(b, "GET", "/v2/bench/repo/manifests/get", accept, nil)
					if resp.StatusCode != http.StatusOK {
						b.Errorf("get: %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

func BenchmarkManifestPut(b *testing.B) {
	for _, t := range getTargets(b) {
		b.Run(t.name, func(b *testing.B) {
			config := []byte(`{"architecture":"amd64","os":"linux"}`)
			layer := randomBytes(b, 1024)
			cd, ld := t.pushBlob(b, config), t.pushBlob(b, layer)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tag := fmt.Sprintf("put-%d", i)
				t.pushManifest(b, tag, manifest(cd, ld, len(config), len(layer), b.Name()+tag))
			}
		})
	}
}

func BenchmarkTagList2000(b *testing.B) {
	for _, t := range getTargets(b) {
		b.Run(t.name, func(b *testing.B) {
			config := []byte(`{"architecture":"amd64","os":"linux"}`)
			layer := randomBytes(b, 1024)
			cd, ld := t.pushBlob(b, config), t.pushBlob(b, layer)
			m := manifest(cd, ld, len(config), len(layer), "tags")
			for i := 0; i < 2000; i++ {
				t.pushManifest(b, fmt.Sprintf("tag-%04d", i), m)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp := t.do(b, "GET", "/v2/bench/repo/tags/list?n=5000", nil, nil)
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("tags: %d", resp.StatusCode)
				}
			}
		})
	}
}
