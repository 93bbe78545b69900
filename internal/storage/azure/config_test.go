package azure

import (
	"reflect"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
)

const testKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

func TestParseConfig(t *testing.T) {
	keyEnv := map[string]string{"AZURE_STORAGE_ACCOUNT": "acct1", "AZURE_STORAGE_KEY": testKey}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range keyEnv {
			m[k] = v
		}
		for k, v := range extra {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	tests := []struct {
		name    string
		loc     string
		env     map[string]string
		want    Config // only the compared fields
		wantLoc string
		wantErr string
	}{
		{
			name: "container and prefix", loc: "bkt-1:/a/b", env: keyEnv,
			want:    Config{Container: "bkt-1", Prefix: "a/b", Account: "acct1", Key: testKey, Endpoint: "https://acct1.blob.core.windows.net/"},
			wantLoc: "azure:bkt-1:/a/b",
		},
		{
			name: "container only", loc: "bkt", env: keyEnv,
			want:    Config{Container: "bkt", Account: "acct1", Key: testKey, Endpoint: "https://acct1.blob.core.windows.net/"},
			wantLoc: "azure:bkt",
		},
		{
			name: "slashes trimmed", loc: "bkt:/a/b/", env: keyEnv,
			want: Config{Container: "bkt", Prefix: "a/b", Account: "acct1", Key: testKey, Endpoint: "https://acct1.blob.core.windows.net/"},
		},
		{
			name: "prefix without slash", loc: "bkt:a", env: keyEnv,
			want: Config{Container: "bkt", Prefix: "a", Account: "acct1", Key: testKey, Endpoint: "https://acct1.blob.core.windows.net/"},
		},
		{
			name: "root with colon", loc: "bkt:/", env: keyEnv,
			want: Config{Container: "bkt", Account: "acct1", Key: testKey, Endpoint: "https://acct1.blob.core.windows.net/"},
		},
		{
			name: "azurite endpoint", loc: "bkt:/p",
			env:  with(map[string]string{"BUNKER_AZURE_ENDPOINT": "http://127.0.0.1:10000/devstoreaccount1"}),
			want: Config{Container: "bkt", Prefix: "p", Account: "acct1", Key: testKey, Endpoint: "http://127.0.0.1:10000/devstoreaccount1"},
		},
		{
			name: "AZURE_STORAGE_ENDPOINT", loc: "bkt",
			env:  with(map[string]string{"AZURE_STORAGE_ENDPOINT": "https://example.invalid/"}),
			want: Config{Container: "bkt", Account: "acct1", Key: testKey, Endpoint: "https://example.invalid/"},
		},
		{
			name: "BUNKER_AZURE_ENDPOINT wins", loc: "bkt",
			env:  with(map[string]string{"AZURE_STORAGE_ENDPOINT": "https://a.invalid/", "BUNKER_AZURE_ENDPOINT": "https://b.invalid/"}),
			want: Config{Container: "bkt", Account: "acct1", Key: testKey, Endpoint: "https://b.invalid/"},
		},
		{
			name: "SAS token", loc: "bkt",
			env:  map[string]string{"AZURE_STORAGE_ACCOUNT": "acct1", "AZURE_STORAGE_SAS_TOKEN": "?sv=2021&sp=rl&sig=abc%2F"},
			want: Config{Container: "bkt", Account: "acct1", SASToken: "sv=2021&sp=rl&sig=abc%2F", Endpoint: "https://acct1.blob.core.windows.net/"},
		},
		{
			name: "connection string", loc: "bkt",
			env:  map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"},
			want: Config{Container: "bkt", ConnectionString: "UseDevelopmentStorage=true"},
		},
		{
			name: "access tier", loc: "bkt",
			env:  with(map[string]string{"BUNKER_AZURE_ACCESS_TIER_PACKS": "cool"}),
			want: Config{Container: "bkt", Account: "acct1", Key: testKey, Endpoint: "https://acct1.blob.core.windows.net/", AccessTierPacks: blob.AccessTierCool},
		},
		{name: "empty", loc: "", env: keyEnv, wantErr: "invalid container name"},
		{name: "short container", loc: "ab", env: keyEnv, wantErr: "invalid container name"},
		{name: "upper-case container", loc: "Bucket", env: keyEnv, wantErr: "invalid container name"},
		{name: "double hyphen", loc: "a--b", env: keyEnv, wantErr: "invalid container name"},
		{name: "trailing hyphen", loc: "abc-", env: keyEnv, wantErr: "invalid container name"},
		{name: "container with slash", loc: "bkt/prefix", env: keyEnv, wantErr: "invalid container name"},
		{name: "dot-dot prefix", loc: "bkt:/a/../b", env: keyEnv, wantErr: "invalid prefix"},
		{name: "empty element", loc: "bkt:/a//b", env: keyEnv, wantErr: "invalid prefix"},
		{name: "dot prefix", loc: "bkt:/.", env: keyEnv, wantErr: "invalid prefix"},
		{name: "control character", loc: "bkt:/a\x01", env: keyEnv, wantErr: "invalid prefix"},
		{name: "no credentials", loc: "bkt", env: map[string]string{"AZURE_STORAGE_ACCOUNT": "acct1"}, wantErr: "no credentials"},
		{name: "no account", loc: "bkt", env: map[string]string{"AZURE_STORAGE_KEY": testKey}, wantErr: "AZURE_STORAGE_ACCOUNT is not set"},
		{name: "bad account", loc: "bkt", env: with(map[string]string{"AZURE_STORAGE_ACCOUNT": "Bad_Account"}), wantErr: "invalid account name"},
		{name: "key and SAS", loc: "bkt", env: with(map[string]string{"AZURE_STORAGE_SAS_TOKEN": "sig=x"}), wantErr: "not both"},
		{name: "key not base64", loc: "bkt", env: with(map[string]string{"AZURE_STORAGE_KEY": "not base64!"}), wantErr: "not valid base64"},
		{name: "SAS without sig", loc: "bkt", env: map[string]string{"AZURE_STORAGE_ACCOUNT": "acct1", "AZURE_STORAGE_SAS_TOKEN": "sv=2021"}, wantErr: "not a SAS token"},
		{
			name: "connection string and key", loc: "bkt",
			env:     with(map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}),
			wantErr: "not both",
		},
		{
			name: "connection string and endpoint", loc: "bkt",
			env:     map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", "BUNKER_AZURE_ENDPOINT": "http://127.0.0.1:1/x"},
			wantErr: "names the endpoint itself",
		},
		{name: "endpoint scheme", loc: "bkt", env: with(map[string]string{"BUNKER_AZURE_ENDPOINT": "ftp://host/"}), wantErr: "invalid endpoint"},
		{name: "endpoint without host", loc: "bkt", env: with(map[string]string{"BUNKER_AZURE_ENDPOINT": "http:///x"}), wantErr: "invalid endpoint"},
		{name: "endpoint with query", loc: "bkt", env: with(map[string]string{"BUNKER_AZURE_ENDPOINT": "https://h/?sig=secret"}), wantErr: "no query"},
		{name: "archive tier", loc: "bkt", env: with(map[string]string{"BUNKER_AZURE_ACCESS_TIER_PACKS": "Archive"}), wantErr: "Archive tier is not supported"},
		{name: "unknown tier", loc: "bkt", env: with(map[string]string{"BUNKER_AZURE_ACCESS_TIER_PACKS": "Lukewarm"}), wantErr: "unknown access tier"},
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
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error shows a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig(%q): %v", tc.loc, err)
			}
			got := Config{
				Container: cfg.Container, Prefix: cfg.Prefix, Account: cfg.Account, Key: cfg.Key,
				SASToken: cfg.SASToken, ConnectionString: cfg.ConnectionString, Endpoint: cfg.Endpoint,
				AccessTierPacks: cfg.AccessTierPacks,
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseConfig(%q) =\n %+v\nwant\n %+v", tc.loc, rawConfig(got), rawConfig(tc.want))
			}
			if tc.wantLoc != "" && cfg.location() != tc.wantLoc {
				t.Errorf("location = %q, want %q", cfg.location(), tc.wantLoc)
			}
			for _, secret := range []string{cfg.Key, cfg.SASToken, cfg.ConnectionString} {
				if secret != "" && strings.Contains(cfg.String(), secret) {
					t.Errorf("String() = %q shows a secret", cfg.String())
				}
			}
		})
	}
}

// rawConfig shows every field of a config (Config.String hides secrets).
type rawConfig Config

func TestParseConfigNilGetenv(t *testing.T) {
	if _, err := ParseConfig("bkt", nil); err == nil || !strings.Contains(err.Error(), "AZURE_STORAGE_ACCOUNT") {
		t.Errorf("ParseConfig with nil getenv = %v, want a missing-account error", err)
	}
}
