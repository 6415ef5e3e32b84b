# Keppel container image: a static binary on a distroless base (CA
# certificates, a non-root user, no shell).
#
#   docker build -t keppel \
#     --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
#   docker run -p 5000:5000 -v keppel-data:/var/lib/keppel keppel
#
# GO_VERSION must match the go directive of go.mod (deploy/deploy_test.go
# checks that).
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
ARG BUILD_DATE=
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.buildDate=${BUILD_DATE}" \
      -o /out/keppel ./cmd/keppel \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/keppel /usr/local/bin/keppel
# The data directory (SQLite database, filesystem storage, generated keys in
# the embedded mode), owned by the image's non-root user.
COPY --from=build --chown=65532:65532 /out/data /var/lib/keppel
USER 65532:65532
ENV KEPPEL_API_LISTEN_ADDRESS=0.0.0.0:5000 \
    KEPPEL_DATA_DIR=/var/lib/keppel
VOLUME ["/var/lib/keppel"]
EXPOSE 5000
ENTRYPOINT ["keppel"]
CMD ["server"]
