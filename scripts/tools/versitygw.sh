# versitygw: an S3 gateway over a POSIX directory, with versioning and
# Object Lock. Sourced by scripts/tools.sh (which defines install_go).
# The S3 backend tests (internal/storage/s3) run against it.
VERSITYGW_VERSION=v1.8.0
install_go versitygw "$VERSITYGW_VERSION" "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
