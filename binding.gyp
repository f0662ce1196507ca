{
  "targets": [
    {
      "target_name": "sixpn_native",
      "sources": ["src/tun/native/sixpn_native.c"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    }
  ]
}
