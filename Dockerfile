# syntax=docker/dockerfile:1
# Guildhall: one image holding relay, hub and guild.
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t guildhall:local .

# ---- build: static binaries, trimmed and version stamped
FROM golang:1.26.8-bookworm AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
RUN go build -ldflags "-s -w -X main.version=${VERSION}" -o /out/relay ./cmd/relay && \
    go build -ldflags "-s -w -X main.version=${VERSION}" -o /out/hub ./cmd/hub && \
    go build -ldflags "-s -w -X main.version=${VERSION}" -o /out/guild ./cmd/guild
# An unprivileged user and the data directory, for the empty runtime image.
RUN echo 'guildhall:x:65532:65532:guildhall:/data:/sbin/nologin' > /out/passwd && \
    echo 'guildhall:x:65532:' > /out/group && \
    mkdir -p /out/data && chown 65532:65532 /out/data && chmod 0700 /out/data

# ---- runtime: nothing but the binaries, CA certificates and a non-root user
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/relay /out/hub /out/guild /usr/local/bin/
USER 65532:65532
ENV XDG_DATA_HOME=/data HOME=/data
VOLUME ["/data"]
WORKDIR /data
# The hub's admin listener answers /healthz; for the relay, override with
# its metrics address: ["/usr/local/bin/relay", "-healthcheck", "http://127.0.0.1:9641/healthz"].
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/hub", "-healthcheck", "http://127.0.0.1:7421/healthz"]
EXPOSE 7420 3478/udp 3478/tcp 5349/tcp 4001/tcp 4001/udp 4101/tcp 4101/udp
ENTRYPOINT ["/usr/local/bin/hub"]
CMD ["-config", "/etc/guildhall/hub.yaml"]
