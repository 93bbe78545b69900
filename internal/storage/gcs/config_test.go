package gcs

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		loc     string
		env     map[string]string
		want    Config // only the compared fields
		wantLoc string
		wantErr string
	}{
		{
			name: "bucket and prefix", loc: "my-bucket:/a/b",
			env:     map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": "/etc/sa.json", "GOOGLE_PROJECT_ID": "proj"},
			want:    Config{Bucket: "my-bucket", Prefix: "a/b", CredentialsFile: "/etc/sa.json", ProjectID: "proj"},
			wantLoc: "gs:my-bucket:/a/b",
		},
		{name: "bucket only", loc: "bkt", want: Config{Bucket: "bkt"}, wantLoc: "gs:bkt"},
		{name: "slashes trimmed", loc: "bkt:/a/b/", want: Config{Bucket: "bkt", Prefix: "a/b"}},
		{name: "prefix without slash", loc: "bkt:a", want: Config{Bucket: "bkt", Prefix: "a"}},
		{name: "root with colon", loc: "bkt:/", want: Config{Bucket: "bkt"}},
		{name: "dotted bucket", loc: "backups.example.com", want: Config{Bucket: "backups.example.com"}},
		{name: "underscore", loc: "my_bucket", want: Config{Bucket: "my_bucket"}},
		{
			name: "emulator", loc: "bkt", env: map[string]string{"STORAGE_EMULATOR_HOST": "127.0.0.1:4443"},
			want: Config{Bucket: "bkt", EmulatorHost: "127.0.0.1:4443"},
		},
		{
			name: "emulator URL", loc: "bkt", env: map[string]string{"STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443"},
			want: Config{Bucket: "bkt", EmulatorHost: "http://127.0.0.1:4443"},
		},
		{
			name: "storage class", loc: "bkt", env: map[string]string{"BUNKER_GS_STORAGE_CLASS_PACKS": "coldline"},
			want: Config{Bucket: "bkt", StorageClassPacks: "COLDLINE"},
		},
		{name: "empty", loc: "", wantErr: "invalid bucket name"},
		{name: "short", loc: "ab", wantErr: "invalid bucket name"},
		{name: "upper case", loc: "Bucket", wantErr: "invalid bucket name"},
		{name: "leading hyphen", loc: "-bkt", wantErr: "invalid bucket name"},
		{name: "goog prefix", loc: "google-backups", wantErr: "invalid bucket name"},
		{name: "long part", loc: strings.Repeat("a", 64), wantErr: "longer than 63"},
		{name: "empty dot part", loc: "a..b", wantErr: "empty dot-separated part"},
		{name: "bucket with slash", loc: "bkt/prefix", wantErr: "invalid bucket name"},
		{name: "dot-dot prefix", loc: "bkt:/a/../b", wantErr: "invalid prefix"},
		{name: "empty element", loc: "bkt:/a//b", wantErr: "invalid prefix"},
		{name: "control character", loc: "bkt:/a\nb", wantErr: "invalid prefix"},
		{name: "bad emulator", loc: "bkt", env: map[string]string{"STORAGE_EMULATOR_HOST": "ftp://x"}, wantErr: "STORAGE_EMULATOR_HOST"},
		{name: "emulator with path", loc: "bkt", env: map[string]string{"STORAGE_EMULATOR_HOST": "host:1/x"}, wantErr: "STORAGE_EMULATOR_HOST"},
		{name: "unknown class", loc: "bkt", env: map[string]string{"BUNKER_GS_STORAGE_CLASS_PACKS": "frozen"}, wantErr: "unknown storage class"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig(tc.loc, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseConfig(%q) = %v, want error containing %q", tc.loc, cfg, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseConfig(%q) error = %q, want it to contain %q", tc.loc, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig(%q): %v", tc.loc, err)
			}
			got := Config{
				Bucket: cfg.Bucket, Prefix: cfg.Prefix, CredentialsFile: cfg.CredentialsFile,
				ProjectID: cfg.ProjectID, EmulatorHost: cfg.EmulatorHost, StorageClassPacks: cfg.StorageClassPacks,
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseConfig(%q) =\n %+v\nwant\n %+v", tc.loc, got, tc.want)
			}
			if tc.wantLoc != "" && cfg.location() != tc.wantLoc {
				t.Errorf("location = %q, want %q", cfg.location(), tc.wantLoc)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"endpoint", Config{Bucket: "bkt", Endpoint: "http://127.0.0.1:1/storage/v1/"}, ""},
		{"endpoint scheme", Config{Bucket: "bkt", Endpoint: "gs://x/"}, "invalid endpoint"},
		{"endpoint query", Config{Bucket: "bkt", Endpoint: "https://x/?a=b"}, "invalid endpoint"},
		{"chunk size", Config{Bucket: "bkt", ChunkSize: -1}, "negative chunk size"},
		{"attempts", Config{Bucket: "bkt", MaxAttempts: -1}, "negative max attempts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestEmulatorEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:4443":         "http://127.0.0.1:4443/storage/v1/",
		"http://127.0.0.1:4443":  "http://127.0.0.1:4443/storage/v1/",
		"https://127.0.0.1:4443": "https://127.0.0.1:4443/storage/v1/",
	} {
		if got, err := emulatorEndpoint(in); err != nil || got != want {
			t.Errorf("emulatorEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
