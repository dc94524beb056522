"""The lab tools, apart from the product: the test receiver (`listen`), the demo and its
throw-away PKI."""
