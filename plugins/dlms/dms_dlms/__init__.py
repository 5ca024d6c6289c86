"""Leitstand DLMS/COSEM plugin: meter source (client) and simulated meter server, on gurux-dlms."""
