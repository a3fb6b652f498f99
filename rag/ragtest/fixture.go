package ragtest

import _ "embed"

// SecretsLog is a log full of secrets of every kind medic redacts (tokens,
// passwords, keys, bearer and basic headers, connection strings, a private
// key) plus one that only the custom pattern CustomPattern catches.
//
//go:embed secrets.log
var SecretsLog string

// CustomPattern is the ai.redact_patterns entry SecretsLog needs.
const CustomPattern = `internal-token-[A-Z0-9]+`

// Secrets are the secret values in SecretsLog; none may leave for a model.
var Secrets = []string{
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYXJ0LXN2YyIsImlhdCI6MTcxNDU1NTIwMH0.Xq2vQm8yZbWk3sT7nLp9rA4cD6eF1gH0jK5lM2nO3pQ",
	"Y2FydDpodW50ZXIyLXN1cGVyLXNlY3JldA==",
	"Pg-P4ssw0rd-9931",
	"R3dis-Secr3t-Value",
	"Rabb1t-Pa55word",
	"hunter2-DB-secret-771",
	"sk_live_51HqLyjWDarjtT1zdp7dcXYZab",
	"AbCdEf0123456789GhIjKlMn",
	"AKIAIOSFODNN7EXAMPLE",
	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	"ghp_16C7e42F292c6912E7710c838347Ae178B4a",
	"xoxb-2048-4096-AbCdEfGhIjKlMnOpQrStUv",
	"aBcDeFgHiJkLmNoPqRsTuVwX",
	"sk-proj-Abc123Def456Ghi789Jkl012Mno345Pqr678",
	"AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
	"glpat-xY7zW3vU9tS1rQ5pO2nM",
	"Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg==",
	"MsSql-Pass-5521",
	"Form-Passw0rd-Entered",
	"hvs.CAESIJ3xKq9v1Zw8Ty2Lm4Np6Rs",
	"Cl13nt-S3cr3t-QwErTy",
	"MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
	"internal-token-ZX81",
}
