// Package check verifies the deployment files without a Docker engine:
// docker-compose.yml through the compose specification's loader, the
// Dockerfile through BuildKit's parser and a build with its flags, the
// Prometheus rules through Prometheus's parser, every metric the rules and
// dashboards use against what a running hub and relay export, and the
// systemd units. It is its own module so that these tools' dependencies
// never reach the binaries.
package check
