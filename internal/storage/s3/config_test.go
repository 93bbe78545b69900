package s3

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	key32 := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	creds := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t-v4lue"}
	with := func(extra ...string) map[string]string {
		m := map[string]string{}
		for k, v := range creds {
			m[k] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		loc     string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string // substring of the error; "" means no error
	}{
		{name: "https default", loc: "s3.amazonaws.com/bucket/some/prefix", env: creds, check: func(t *testing.T, c Config) {
			want := Config{Endpoint: "s3.amazonaws.com", Bucket: "bucket", Prefix: "some/prefix"}
			if c.Endpoint != want.Endpoint || c.Bucket != want.Bucket || c.Prefix != want.Prefix || c.Insecure {
				t.Errorf("got %+v", c)
			}
			if c.PartSize != DefaultPartSize || c.BucketLookup != LookupAuto || c.ConditionalCreate != CondAuto || c.MaxRetries != DefaultMaxRetries {
				t.Errorf("defaults not filled in: %#v", c)
			}
			if c.AccessKeyID != "AKIDEXAMPLE" || c.SecretAccessKey != "s3cr3t-v4lue" {
				t.Errorf("credentials not read")
			}
			if got := c.location(); got != "s3:s3.amazonaws.com/bucket/some/prefix" {
				t.Errorf("location = %q", got)
			}
			if got := c.base(); got != "s3:https://s3.amazonaws.com/bucket/some/prefix" {
				t.Errorf("base = %q", got)
			}
		}},
		{name: "http with port", loc: "http://127.0.0.1:9000/bkt/pfx", env: creds, check: func(t *testing.T, c Config) {
			if !c.Insecure || c.Endpoint != "127.0.0.1:9000" || c.Bucket != "bkt" || c.Prefix != "pfx" {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "explicit https", loc: "https://minio.example.com:9000/bkt", check: func(t *testing.T, c Config) {
			if c.Insecure || c.Prefix != "" || c.Endpoint != "minio.example.com:9000" {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "trailing slashes", loc: "host/bkt/a/b/", check: func(t *testing.T, c Config) {
			if c.Prefix != "a/b" {
				t.Errorf("prefix %q", c.Prefix)
			}
		}},
		{name: "bucket with slash", loc: "host/bkt/", check: func(t *testing.T, c Config) {
			if c.Bucket != "bkt" || c.Prefix != "" {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "ipv6", loc: "http://[::1]:9000/bkt", check: func(t *testing.T, c Config) {
			if c.Endpoint != "[::1]:9000" {
				t.Errorf("endpoint %q", c.Endpoint)
			}
		}},
		{name: "all options in the query", loc: "host/bkt/p?region=eu-west-1&bucket-lookup=path&storage-class=STANDARD&storage-class-packs=GLACIER_IR&sse=aws:kms&sse-kms-key-id=arn:aws:kms:k&part-size=64MiB&object-lock=true&conditional-create=false",
			check: func(t *testing.T, c Config) {
				if c.Region != "eu-west-1" || c.BucketLookup != LookupPath || c.StorageClass != "STANDARD" || c.StorageClassPacks != "GLACIER_IR" ||
					c.SSE != SSEKMS || c.SSEKMSKeyID != "arn:aws:kms:k" || c.PartSize != 64<<20 || !c.ObjectLock || c.ConditionalCreate != CondOff {
					t.Errorf("got %#v", c)
				}
				if c.location() != "s3:host/bkt/p?region=eu-west-1&bucket-lookup=path&storage-class=STANDARD&storage-class-packs=GLACIER_IR&sse=aws:kms&sse-kms-key-id=arn:aws:kms:k&part-size=64MiB&object-lock=true&conditional-create=false" {
					t.Errorf("location %q", c.location())
				}
			}},
		{name: "options from the environment", loc: "host/bkt", env: with(
			"BUNKER_S3_REGION", "us-west-2", "BUNKER_S3_BUCKET_LOOKUP", "DNS", "BUNKER_S3_STORAGE_CLASS_PACKS", "STANDARD_IA",
			"BUNKER_S3_SSE", "AES256", "BUNKER_S3_PART_SIZE", "5242880", "BUNKER_S3_OBJECT_LOCK", "1",
			"BUNKER_S3_CONDITIONAL_CREATE", "yes"),
			wantErr: "want auto, true or false"},
		{name: "options from the environment 2", loc: "host/bkt", env: with(
			"BUNKER_S3_REGION", "us-west-2", "BUNKER_S3_BUCKET_LOOKUP", "DNS", "BUNKER_S3_STORAGE_CLASS_PACKS", "STANDARD_IA",
			"BUNKER_S3_SSE", "aes256", "BUNKER_S3_PART_SIZE", "5242880", "BUNKER_S3_OBJECT_LOCK", "1",
			"BUNKER_S3_CONDITIONAL_CREATE", "TRUE"),
			check: func(t *testing.T, c Config) {
				if c.Region != "us-west-2" || c.BucketLookup != LookupDNS || c.StorageClassPacks != "STANDARD_IA" || c.SSE != SSES3 ||
					c.PartSize != 5<<20 || !c.ObjectLock || c.ConditionalCreate != CondOn {
					t.Errorf("got %#v", c)
				}
			}},
		{name: "query wins over environment", loc: "host/bkt?region=ap-south-1&part-size=32M", env: with("BUNKER_S3_REGION", "us-west-2", "AWS_REGION", "eu-north-1", "BUNKER_S3_PART_SIZE", "8MiB"),
			check: func(t *testing.T, c Config) {
				if c.Region != "ap-south-1" || c.PartSize != 32<<20 {
					t.Errorf("got %#v", c)
				}
			}},
		{name: "AWS_REGION", loc: "host/bkt", env: with("AWS_REGION", "eu-north-1", "AWS_DEFAULT_REGION", "eu-south-1"), check: func(t *testing.T, c Config) {
			if c.Region != "eu-north-1" {
				t.Errorf("region %q", c.Region)
			}
		}},
		{name: "AWS_DEFAULT_REGION", loc: "host/bkt", env: with("AWS_DEFAULT_REGION", "eu-south-1"), check: func(t *testing.T, c Config) {
			if c.Region != "eu-south-1" {
				t.Errorf("region %q", c.Region)
			}
		}},
		{name: "kms key id implies kms", loc: "host/bkt?sse-kms-key-id=k1", check: func(t *testing.T, c Config) {
			if c.SSE != SSEKMS {
				t.Errorf("sse %q", c.SSE)
			}
		}},
		{name: "profile and credentials file", loc: "host/bkt", env: map[string]string{"AWS_PROFILE": "backup", "AWS_SHARED_CREDENTIALS_FILE": "/etc/bunker/aws"},
			check: func(t *testing.T, c Config) {
				if c.Profile != "backup" || c.CredentialsFile != "/etc/bunker/aws" || c.AccessKeyID != "" {
					t.Errorf("got %#v", c)
				}
			}},
		{name: "session token", loc: "host/bkt", env: with("AWS_SESSION_TOKEN", "tok"), check: func(t *testing.T, c Config) {
			if c.SessionToken != "tok" {
				t.Errorf("token %q", c.SessionToken)
			}
		}},
		{name: "sse-c key", loc: "host/bkt", env: with("BUNKER_S3_SSE_C_KEY", key32), check: func(t *testing.T, c Config) {
			if len(c.SSECKey) != 32 {
				t.Errorf("key of %d bytes", len(c.SSECKey))
			}
		}},

		{name: "empty", loc: "", wantErr: "no host"},
		{name: "no bucket", loc: "host", wantErr: "no bucket"},
		{name: "no bucket with slash", loc: "https://host/", wantErr: "no bucket"},
		{name: "bad scheme", loc: "ftp://host/bkt", wantErr: `scheme "ftp"`},
		{name: "credentials in the location", loc: "https://AKID:topsecret@host/bkt", wantErr: "credentials do not belong"},
		{name: "bad bucket name", loc: "host/Bad_Bucket", wantErr: "bucket"},
		{name: "short bucket name", loc: "host/ab", wantErr: "bucket"},
		{name: "empty prefix segment", loc: "host/bkt/a//b", wantErr: "empty path segment"},
		{name: "dot-dot prefix", loc: "host/bkt/a/../b", wantErr: `".." segment`},
		{name: "dot prefix", loc: "host/bkt/./b", wantErr: `"." segment`},
		{name: "fragment", loc: "host/bkt#frag", wantErr: "fragment"},
		{name: "unknown option", loc: "host/bkt?regoin=x", wantErr: `unknown option "regoin"`},
		{name: "repeated option", loc: "host/bkt?region=a&region=b", wantErr: "given 2 times"},
		{name: "bad lookup", loc: "host/bkt?bucket-lookup=virtual", wantErr: "bucket-lookup"},
		{name: "bad sse", loc: "host/bkt?sse=rot13", wantErr: "sse"},
		{name: "kms key without kms", loc: "host/bkt?sse=AES256&sse-kms-key-id=k", wantErr: "needs sse=aws:kms"},
		{name: "part size too small", loc: "host/bkt?part-size=1MiB", wantErr: "between 5 MiB and 5 GiB"},
		{name: "part size too large", loc: "host/bkt?part-size=6GiB", wantErr: "between 5 MiB and 5 GiB"},
		{name: "part size unit", loc: "host/bkt?part-size=5parsecs", wantErr: "unknown unit"},
		{name: "part size not a number", loc: "host/bkt?part-size=lots", wantErr: "want a size"},
		{name: "part size overflow", loc: "host/bkt?part-size=99999999999999999999", wantErr: "want a size"},
		{name: "bad bool", loc: "host/bkt?object-lock=maybe", wantErr: "object-lock"},
		{name: "bad storage class", loc: "host/bkt?storage-class=standard ia", wantErr: "storage class"},
		{name: "sse-c key in the query", loc: "host/bkt?sse-c-key=abc", wantErr: "BUNKER_S3_SSE_C_KEY"},
		{name: "sse-c key not base64", loc: "host/bkt", env: with("BUNKER_S3_SSE_C_KEY", "not base64!"), wantErr: "not valid base64"},
		{name: "sse-c key too short", loc: "host/bkt", env: with("BUNKER_S3_SSE_C_KEY", base64.StdEncoding.EncodeToString([]byte("short"))), wantErr: "want 32 bytes"},
		{name: "sse-c with sse", loc: "host/bkt?sse=AES256", env: with("BUNKER_S3_SSE_C_KEY", key32), wantErr: "excludes sse"},
		{name: "sse-c over http", loc: "http://host/bkt", env: with("BUNKER_S3_SSE_C_KEY", key32), wantErr: "needs https"},
		{name: "key without secret", loc: "host/bkt", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKID"}, wantErr: "set both"},
		{name: "secret without key", loc: "host/bkt", env: map[string]string{"AWS_SECRET_ACCESS_KEY": "topsecret"}, wantErr: "set both"},
		{name: "token without keys", loc: "host/bkt", env: map[string]string{"AWS_SESSION_TOKEN": "tok"}, wantErr: "AWS_SESSION_TOKEN"},
		{name: "bad query escape", loc: "host/bkt?region=%zz", wantErr: "query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(tc.loc, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseConfig(%q) = %#v, want an error with %q", tc.loc, c, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseConfig(%q) = %v, want an error with %q", tc.loc, err, tc.wantErr)
				}
				for _, secret := range []string{"topsecret", "s3cr3t-v4lue", key32} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q shows a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig(%q): %v", tc.loc, err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
			// Printing a config never shows the secrets.
			for _, s := range []string{c.String(), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
				for _, secret := range []string{"s3cr3t-v4lue", "tok", key32} {
					if strings.Contains(s, secret) {
						t.Errorf("printed config %q shows a secret", s)
					}
				}
			}
		})
	}
}

func TestParseConfigNilGetenv(t *testing.T) {
	c, err := ParseConfig("host/bkt/p", nil)
	if err != nil || c.Bucket != "bkt" {
		t.Fatalf("ParseConfig with nil getenv = %+v, %v", c, err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@host/bkt":  "https://REDACTED@host/bkt",
		"user:pw@host/bkt?x=@":      "REDACTED@host/bkt?x=@",
		"host/bkt/p@x":              "host/bkt/p@x",
		"http://127.0.0.1:9000/b/p": "http://127.0.0.1:9000/b/p",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
