"""Prints Shared Key and SAS signatures made by the official Python SDK; src/azure/credential.rs tests them."""
from azure.storage.fileshare._shared.authentication import SharedKeyCredentialPolicy
from azure.storage.fileshare import generate_share_sas, generate_file_sas, generate_account_sas, ResourceTypes, AccountSasPermissions, ShareSasPermissions, FileSasPermissions
from azure.core.pipeline import PipelineRequest, PipelineContext
from azure.core.rest import HttpRequest
import datetime
KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
req = HttpRequest("PUT", "http://127.0.0.1:10004/devstoreaccount1/share%20one/dir/f%C3%A9.txt?comp=range&sharesnapshot=2026-01-01T00%3A00%3A00.0000000Z",
    headers={"x-ms-version":"2025-05-05","x-ms-date":"Wed, 25 Nov 2026 12:00:00 GMT","x-ms-range":"bytes=0-511","x-ms-write":"update","Content-Length":"512","x-ms-file-request-intent":"backup","Content-Type":"application/octet-stream"})
pr = PipelineRequest(req, PipelineContext(None))
SharedKeyCredentialPolicy("devstoreaccount1", KEY).on_request(pr)
print("AUTH", req.headers["Authorization"])
exp = datetime.datetime(2030,1,1,tzinfo=datetime.timezone.utc)
print("SHARE", generate_share_sas("devstoreaccount1","myshare",KEY,permission=ShareSasPermissions(read=True,list=True),expiry=exp))
print("FILE", generate_file_sas("devstoreaccount1","myshare",["dir","a b.txt"],KEY,permission=FileSasPermissions(read=True),expiry=exp))
print("ACCOUNT", generate_account_sas("devstoreaccount1",KEY,ResourceTypes(service=True,container=True,object=True),AccountSasPermissions(read=True,list=True,write=True,create=True),expiry=exp))
