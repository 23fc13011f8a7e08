"""The mock itself: the framework-free endpoint core (:mod:`mock_server.mock.core`)."""
