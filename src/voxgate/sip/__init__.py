"""The SIP edge: Kamailio started, configured and supervised by voxgate, asking voxgate for
every verdict (``hook``, ``registrar``, ``invites``), its contacts kept in voxgate's presence."""
