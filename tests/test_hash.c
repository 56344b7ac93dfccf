/* test_hash.c - SHA-256 against FIPS 180-4 vectors; XXH3 stability. */
#include "hash.h"
#include "t.h"

int main(void)
{
	char hex[65];
	sha256_hex("", 0, hex);
	T_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256_hex("abc", 3, hex);
	T_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sha256_hex(two, strlen(two), hex);
	T_EQ_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

	/* A million 'a' fed in odd-sized pieces. */
	struct sha256 s;
	char chunk[997];
	memset(chunk, 'a', sizeof(chunk));
	sha256_init(&s);
	size_t left = 1000000;
	while (left) {
		size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
		sha256_update(&s, chunk, n);
		left -= n;
	}
	sha256_final_hex(&s, hex);
	T_EQ_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

	/* The accelerated and portable rounds agree on every length up to a few
	 * blocks, fed whole and in pieces. */
	{
		static unsigned char data[700];
		char acc[65], port[65], piece[65];
		int bad = 0, accel = sha256_accel(1);
		for (size_t i = 0; i < sizeof(data); i++)
			data[i] = (unsigned char)(i * 131 + 7);
		for (size_t n = 0; n <= sizeof(data); n += n < 200 ? 1 : 37) {
			sha256_accel(1);
			sha256_hex(data, n, acc);
			sha256_accel(0);
			sha256_hex(data, n, port);
			sha256_init(&s);
			for (size_t off = 0; off < n; off += 13)
				sha256_update(&s, data + off, n - off < 13 ? n - off : 13);
			sha256_final_hex(&s, piece);
			bad += strcmp(acc, port) != 0 || strcmp(acc, piece) != 0;
		}
		sha256_accel(accel);
		T_EQ_INT(bad, 0);
	}

	char h1[33], h2[33];
	hash128_hex("abc", 3, h1);
	hash128_hex("abc", 3, h2);
	T_EQ_STR(h1, h2);
	T_EQ_INT(strlen(h1), 32);
	T_TRUE(hash64("abc", 3, 1) != hash64("abc", 3, 2));
	T_TRUE(hash_mix64(1, 2) != hash_mix64(2, 1));
	return t_done();
}
