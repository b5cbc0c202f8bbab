"""The kazoo boundary: the only package that imports kazoo's client and exceptions."""
