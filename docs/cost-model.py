# The monthly cost model of docs/capacity.md: measured units times a stated workload, at list
# prices (us-east-1, as known on 2026-12-03). `python3 docs/cost-model.py` prints the table.
P = dict(
  wru=0.625/1e6, rru=0.125/1e6, ddb_gb=0.25, pitr_gb=0.20,
  lambda_gbs=0.0000133334, lambda_req=0.20/1e6,
  sqs_req=0.40/1e6, sm_secret=0.40, sm_call=0.05/1e4,
  apigw=1.00/1e6, logs_gb=0.50, metric=0.30, dashboard=3.0, alarm=0.10,
)
# Workload per partner per month
W = dict(
  notifies=30_000,          # 1,000 single-slot notifies a day
  triggers=60,              # 2 sync triggers a day, unchanged catalog mostly
  changed_products=150,     # 5 changed products a day (PRODUCT_UPDATE or a trigger)
  nightly=30,
  products=300, slots=10_000,
)
# Per-operation DynamoDB units measured by make bench-capacity
U = dict(
  notify=(1.5, 2.0),        # (RRU, WRU) notify of a known product incl. rate-limit counter
  trigger=(6.0, 4.0),       # unchanged 300 products: states read; lease, commit, run, rate-limit counter
  product=(2.5, 7.0),       # PRODUCT_UPDATE job
  nightly_sync=(6.0, 3.0),  # a queued nightly sync of an unchanged catalog (no rate counter)
  fanout=(2.0, 1.0),        # per integration: its share of a page job (BatchGet of 2 items, CTRL put)
)
def month(n):
    ops = dict(
      notify=W['notifies'], trigger=W['triggers'], product=W['changed_products'],
      nightly_sync=W['nightly'], fanout=W['nightly'])
    rru = sum(U[k][0]*v for k,v in ops.items())*n
    wru = sum(U[k][1]*v for k,v in ops.items())*n
    storage_gb = n*(W['products']*1.3e3 + W['slots']*0.3e3 + 3e3)/1e9
    ddb = rru*P['rru'] + wru*P['wru'] + storage_gb*(P['ddb_gb']+P['pitr_gb'])
    # Lambda: notify 20 ms at 256 MB; trigger/product/nightly 500 ms at 512 MB (partner call)
    inv_fast = (W['notifies'])*n
    inv_slow = (W['triggers']+W['changed_products']+W['nightly'])*n + n/100*W['nightly']
    lam = (inv_fast+inv_slow)*P['lambda_req'] + inv_fast*0.02*0.25*P['lambda_gbs'] + inv_slow*0.5*0.5*P['lambda_gbs']
    sqs = (W['changed_products']+W['nightly'])*n*3*P['sqs_req']   # send, receive, delete
    sm = n*P['sm_secret'] + (W['triggers']+W['changed_products']+W['nightly'])*n/10*P['sm_call']  # 1 in 10 reads misses the cache
    apigw = (W['notifies']+W['triggers'])*n*P['apigw']
    logs_gb = ((inv_fast)*0.5e3 + inv_slow*2e3)/1e9
    cw = logs_gb*P['logs_gb'] + 150*P['metric'] + P['dashboard'] + 6*P['alarm']
    return dict(DynamoDB=ddb, Lambda=lam, SQS=sqs, SecretsManager=sm, APIGateway=apigw, CloudWatch=cw)
print("| service | 100 partners | 10,000 partners | 100,000 partners |")
print("|---|---:|---:|---:|")
rows={n:month(n) for n in (100,10_000,100_000)}
for k in rows[100]:
    print(f"| {k} | ${rows[100][k]:,.2f} | ${rows[10_000][k]:,.2f} | ${rows[100_000][k]:,.2f} |")
print(f"| **total** | **${sum(rows[100].values()):,.2f}** | **${sum(rows[10_000].values()):,.2f}** | **${sum(rows[100_000].values()):,.2f}** |")
