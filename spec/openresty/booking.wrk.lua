-- wrk script for spec/openresty/run.sh: POST /booking with a shop.v1.Booking
-- (id "b1", service 3 = GO_SEND in v2, unknown in v1, status CREATED)
wrk.method = "POST"
wrk.body = "\10\2b1\16\3\24\1"
wrk.headers["Content-Type"] = "application/x-protobuf"
